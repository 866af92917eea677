"""Finds jobs whose worker died and queues them again; sends the messages of queued jobs nobody sent;
keeps this worker listed as alive; cleans storage.

The broker would redeliver such a job by itself, but only after the visibility timeout plus a
restore sweep (many minutes, see DESIGN.md). A heartbeat on the job record tells much sooner.
A job whose API process died between writing its record and sending its message stays in the
job store's outbox; after ``dispatch_grace_seconds`` a sweep sends it (a duplicate is harmless).
"""

import logging
import threading
import time
from collections.abc import Callable

from redis import RedisError

from core.errors import StorageError
from core.settings import Settings
from core.store import Stores
from worker import metrics
from worker.cleanup import clean_storage

log = logging.getLogger(__name__)


class Janitor:
    """A thread in the worker's parent process, sweeping every ``heartbeat_seconds``."""

    def __init__(self, stores: Stores, settings: Settings, worker: str, send_render: Callable[[str], None]) -> None:
        self._stores, self._settings, self._worker = stores, settings, worker
        self._send_render = send_render
        self._back_since: float | None = float("-inf")  # when Redis came back after an outage; None: it is out
        self._next_cleanup = float("-inf")
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
        """Stamp this worker alive, requeue every stale running job and send what the outbox still owes;
        returns the requeued ids.

        Right after a Redis outage every heartbeat looks stale, live renders included: for
        ``stale_after_seconds`` after Redis is back, nothing is requeued, so they can beat again.
        """
        self._stores.workers.stamp(self._worker)
        if self._back_since is None:
            self._back_since = time.monotonic()
        if time.monotonic() - self._back_since < self._settings.stale_after_seconds:
            return []
        requeued = []
        for job_id in self._stores.jobs.running_ids():
            if self._stores.jobs.requeue_if_stale(job_id, self._settings.stale_after_seconds):
                metrics.job_retried("worker_lost")
                self._dispatch(job_id)
                log.warning("job %s: its worker stopped sending heartbeats; queued again", job_id)
                requeued.append(job_id)
        for job_id in self._stores.jobs.due_for_dispatch(self._settings.dispatch_grace_seconds):
            self._dispatch(job_id)
            log.warning(
                "job %s: queued over %.0f s ago, its message never confirmed sent; sent it",
                job_id,
                self._settings.dispatch_grace_seconds,
            )
        return requeued

    def _dispatch(self, job_id: str) -> None:
        self._send_render(job_id)
        self._stores.jobs.mark_dispatched(job_id)

    def _run(self) -> None:
        while True:
            try:
                self.sweep()
            except RedisError as exc:
                self._back_since = None
                log.warning("janitor sweep failed: %s", exc)
            self._clean_when_due()
            if self._stop.wait(self._settings.heartbeat_seconds):
                return

    def _clean_when_due(self) -> None:
        if time.monotonic() < self._next_cleanup or self._back_since is None:
            return
        self._next_cleanup = time.monotonic() + self._settings.cleanup_interval_seconds
        try:
            clean_storage(self._stores)
        except (RedisError, OSError, StorageError) as exc:  # the next round tries again
            log.warning("storage cleanup failed: %s", exc)
