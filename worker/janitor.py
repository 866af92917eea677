"""Finds jobs whose worker died and queues them again; keeps this worker listed as alive.

The broker would redeliver such a job by itself, but only after the visibility timeout plus a
restore sweep (many minutes, see DESIGN.md). A heartbeat on the job record tells much sooner.
"""

import logging
import threading
from collections.abc import Callable

from redis import RedisError

from core.settings import Settings
from core.stores import Stores

log = logging.getLogger(__name__)


class Janitor:
    """A thread in the worker's parent process, sweeping every ``heartbeat_seconds``."""

    def __init__(self, stores: Stores, settings: Settings, worker: str, send_render: Callable[[str], None]) -> None:
        self._stores, self._settings, self._worker = stores, settings, worker
        self._send_render = send_render
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="filterviz-janitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self._stores.workers.remove(self._worker)
        except RedisError as exc:  # shutting down anyway; the stamp just ages out
            log.warning("could not unlist worker %s: %s", self._worker, exc)

    def sweep(self) -> list[str]:
        """Stamp this worker alive and requeue every stale running job; returns the requeued ids."""
        self._stores.workers.stamp(self._worker)
        requeued = []
        for job_id in self._stores.jobs.running_ids():
            if self._stores.jobs.requeue_if_stale(job_id, self._settings.stale_after_seconds):
                self._send_render(job_id)
                log.warning("job %s: its worker stopped sending heartbeats; queued again", job_id)
                requeued.append(job_id)
        return requeued

    def _run(self) -> None:
        while True:
            try:
                self.sweep()
            except RedisError as exc:
                log.warning("janitor sweep failed: %s", exc)
            if self._stop.wait(self._settings.heartbeat_seconds):
                return
