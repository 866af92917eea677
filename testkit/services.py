"""The service's real processes, for tests and benchmarks: a worker and the API as children.

Each child reads its settings from the environment (``settings_env``) and points at a Redis the
caller started (filterviz.redis_server.embedded_redis): nothing here touches the machine's own.
"""

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from pydantic import SecretStr

from core.settings import Settings
from core.store import Stores
from core.store.objects import s3_client
from filterviz.redis_server import free_port
from filterviz.service import api_command, worker_command

T = TypeVar("T")

WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # Standard Webhooks' own test secret


def service_settings_for(redis_url: str, root: Path) -> Settings:
    """Small limits, fast heartbeats (a lost worker is noticed in seconds) and fast webhook retries."""
    return Settings(
        redis_url=redis_url,
        storage_dir=root / "results",
        upload_dir=root / "uploads",
        cache_dir=root / "cache",  # the result cache, per run: nothing served from an earlier one
        models=["efficientnet_lite0", "vgg16"],
        device="cpu",
        max_filters=8,
        max_steps=3000,
        min_size=16,
        max_size=96,
        max_upload_bytes=100_000,
        max_image_pixels=1_000_000,
        heartbeat_seconds=0.3,
        stale_after_seconds=2.0,
        describe_timeout_seconds=30.0,
        webhook_secret=SecretStr(WEBHOOK_SECRET),
        webhook_allow_private=True,  # the tests' receivers listen on 127.0.0.1
        webhook_retry_seconds=[0.2, 0.5],
    )


S3_BUCKET = "filterviz-test"


@contextmanager
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto's) on a free loopback port, holding an empty bucket ``S3_BUCKET``;
    yields its URL."""
    from moto.server import ThreadedMotoServer  # a dev dependency: only tests and benchmarks start one

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request in the tests' output
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        s3_client(on_s3(Settings(), url, "")).create_bucket(Bucket=S3_BUCKET)
        yield url
    finally:
        server.stop()


def on_s3(settings: Settings, endpoint: str, prefix: str) -> Settings:
    """``settings`` with results, uploads and the cache in the test bucket under ``prefix`` (credentials given:
    boto3 never looks for any of its own)."""
    return settings.model_copy(
        update={
            "storage_backend": "s3",
            "s3_bucket": S3_BUCKET,
            "s3_endpoint_url": endpoint,
            "s3_region": "us-east-1",
            "s3_addressing_style": "path",
            "s3_access_key_id": "testing",
            "s3_secret_access_key": SecretStr("testing"),
            "s3_prefix": prefix,
        }
    )


def settings_env(settings: Settings, torch_home: Path) -> dict[str, str]:
    """The environment that makes a child process read ``settings`` (pydantic-settings parses JSON lists)."""
    env = {**os.environ, "TORCH_HOME": str(torch_home)}  # an empty TORCH_HOME: no VGG16 weights, for sure
    for name, value in settings.model_dump(mode="json", exclude_none=True).items():
        secret = getattr(settings, name)
        if isinstance(secret, SecretStr):  # dumped masked
            value = secret.get_secret_value()
        env[f"FILTERVIZ_{name.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return env


class ServiceProcess:
    """A worker or API child process in its own session, logging to a file."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the process and everything it started (a machine dying under the worker)."""
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until(probe: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy; fail (the test) with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return value


def start_worker(
    settings: Settings, env: dict[str, str], name: str, logs: Path, cwd: Path | None = None
) -> ServiceProcess:
    """A real Celery worker (``celery -A worker.entrypoint worker``), ready once it is stamped alive."""
    process = ServiceProcess(worker_command(1, name=name), env, logs / f"{name}.log", cwd)
    workers = Stores.from_settings(settings).workers
    try:
        wait_until(lambda: process.popen.poll() is not None or name in workers.alive(5), 60, f"worker {name} to start")
        assert process.popen.poll() is None, process.log()
    except BaseException:  # pytest.fail included: leave no worker behind
        process.kill()
        raise
    return process


def start_api(
    env: dict[str, str], log_path: Path, port: int | None = None, cwd: Path | None = None
) -> tuple[ServiceProcess, str]:
    """The API (uvicorn) on a local port, once it answers /healthz; returns it and its base URL."""
    port = port or free_port()
    process = ServiceProcess(api_command("127.0.0.1", port), env, log_path, cwd)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz").status_code == 200
        except httpx.TransportError:
            assert process.popen.poll() is None, process.log()
            return False

    try:
        wait_until(healthy, 30, "the API to start")
    except BaseException:
        process.kill()
        raise
    return process, url
