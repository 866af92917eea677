"""Watching over one claimed job while it renders: heartbeat, progress, cancellation."""

import logging
import threading
import time
from collections.abc import Callable

from redis import RedisError

from core.jobs import BeatState, JobStore

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 0.25

StepCallback = Callable[[int, int], None]  # on_step(done, total), as core.engine.render calls it


class Canceled(Exception):
    """The job's record asks the render to stop."""


class ClaimLost(Exception):
    """The job was handed to another worker (this one went silent too long); stop without a trace."""


class JobMonitor:
    """Keeps the job's heartbeat fresh from a thread (loading a model or one step may take long)
    and gives the engine an ``on_step`` that writes progress at most every PROGRESS_INTERVAL_SECONDS,
    reads the record after every step, and raises :class:`Canceled` or :class:`ClaimLost` there."""

    def __init__(self, jobs: JobStore, job_id: str, token: str, heartbeat_seconds: float) -> None:
        self._jobs, self._job_id, self._token = jobs, job_id, token
        self._heartbeat_seconds = heartbeat_seconds
        self._state: BeatState = "ok"
        self._last_progress = float("-inf")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat_until_stopped, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> "JobMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def on_step(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self._last_progress >= PROGRESS_INTERVAL_SECONDS:
            self._last_progress = now
            self._beat(done, total)
        else:
            self._check()
        if self._state == "cancel":
            raise Canceled(f"job {self._job_id} was canceled at step {done} of {total}")
        if self._state == "lost":
            raise ClaimLost(f"job {self._job_id} belongs to another worker now")

    def _beat_until_stopped(self) -> None:
        while not self._stop.wait(self._heartbeat_seconds):
            self._beat()

    def _beat(self, done: int | None = None, total: int | None = None) -> None:
        try:
            self._state = self._jobs.beat(self._job_id, self._token, done, total)
        except RedisError as exc:  # render on through a short Redis outage; the next beat may get through
            log.warning("heartbeat of job %s failed: %s", self._job_id, exc)

    def _check(self) -> None:
        try:
            self._state = self._jobs.check(self._job_id, self._token)
        except RedisError as exc:
            log.warning("could not read the state of job %s: %s", self._job_id, exc)
