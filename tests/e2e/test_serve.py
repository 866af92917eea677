"""`filterviz serve`: an embedded Redis, the API and a worker from one command, stopped by Ctrl-C."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import redis

from filterviz.redis_server import free_port
from tests.service_fixtures import wait_until


def test_serve_starts_everything_and_stops_it_all_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("FILTERVIZ_REDIS_URL", "REDIS_URL")}
    env["FILTERVIZ_MODELS"] = '["efficientnet_lite0"]'
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "filterviz", "serve", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        api = f"http://127.0.0.1:{port}"
        wait_until(lambda: _status(f"{api}/readyz") == 200, 90, "serve to be ready")
        output = log_path.read_text()
        redis_url = re.search(r"embedded redis-server at (redis://\S+)", output).group(1)
        assert f"curl -si -X POST {api}/v1/jobs" in output
        assert httpx.get(f"{api}/v1/models").json()[0]["name"] == "efficientnet_lite0"
    finally:
        serve.send_signal(signal.SIGINT)  # also when an assertion failed: serve stops its children
        returncode = serve.wait(30)

    assert returncode == 0, log_path.read_text()

    assert _status(f"{api}/healthz") is None
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: _redis_down(client), 5, "the embedded Redis to stop")
    assert "Warm shutdown" in log_path.read_text()


def _status(url: str) -> int | None:
    try:
        return httpx.get(url).status_code
    except httpx.TransportError:
        return None


def _redis_down(client: redis.Redis) -> bool:
    try:
        client.ping()
    except redis.ConnectionError:
        return True
    return False


def test_api_and_worker_commands_need_a_redis_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("FILTERVIZ_REDIS_URL", "REDIS_URL")}
    for command in ("api", "worker"):
        result = subprocess.run(
            [sys.executable, "-m", "filterviz", command], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 2
        assert result.stderr == "filterviz: error: FILTERVIZ_REDIS_URL is not set (or use `filterviz serve`)\n"
