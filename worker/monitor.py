"""Watching over the claimed jobs of a batch while it renders: heartbeats, progress, and whether to stop.

Progress and stop decisions are separate questions: :meth:`BatchMonitor.report` writes how far each
job is, :meth:`BatchMonitor.stopping` tells which jobs must stop. Both are asked after every step;
together they cost one Redis call per job and step.
"""

import logging
import threading
import time

from redis import RedisError

from core.jobs import BeatState
from core.store.jobs import JobStore

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 0.25


class BatchMonitor:
    """Keeps every watched job's heartbeat fresh from one thread (loading a model or one step may take
    long), writes each job's progress at most every PROGRESS_INTERVAL_SECONDS, and reads after every
    step whether a job must stop: "cancel" (a client asked) or "lost" (the job was handed to another
    worker after this one went silent too long)."""

    def __init__(self, jobs: JobStore, heartbeat_seconds: float) -> None:
        self._jobs = jobs
        self._heartbeat_seconds = heartbeat_seconds
        self._tokens: dict[str, str] = {}
        self._states: dict[str, BeatState] = {}
        self._last_progress: dict[str, float] = {}
        self._just_written: set[str] = set()  # jobs whose state the last report read with its write
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat_until_stopped, name="heartbeats", daemon=True)

    def __enter__(self) -> "BatchMonitor":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def watch(self, job_id: str, token: str) -> None:
        with self._lock:
            self._tokens[job_id] = token
            self._states[job_id] = "ok"
            self._last_progress[job_id] = float("-inf")

    def release(self, job_id: str) -> None:
        with self._lock:
            self._tokens.pop(job_id, None)

    def report(self, progress: dict[str, tuple[int, int]]) -> None:
        """Record each job's (steps done, steps in all): written when due, and always at the last step."""
        now = time.monotonic()
        for job_id, (done, total) in progress.items():
            if done == total or now - self._last_progress[job_id] >= PROGRESS_INTERVAL_SECONDS:
                self._last_progress[job_id] = now
                self._beat(job_id, done, total)
                self._just_written.add(job_id)

    def stopping(self) -> dict[str, BeatState]:
        """The watched jobs that must stop, with why (a progress write just made told it for its job)."""
        with self._lock:
            watched = list(self._tokens)
        for job_id in watched:
            if job_id not in self._just_written:
                self._check(job_id)
        self._just_written.clear()
        return {job_id: self._states[job_id] for job_id in watched if self._states[job_id] != "ok"}

    def _beat_until_stopped(self) -> None:
        while not self._stop.wait(self._heartbeat_seconds):
            with self._lock:
                watched = list(self._tokens)
            for job_id in watched:
                self._beat(job_id)

    def _beat(self, job_id: str, done: int | None = None, total: int | None = None) -> None:
        token = self._tokens.get(job_id)
        if token is None:
            return
        try:
            self._states[job_id] = self._jobs.beat(job_id, token, done, total)
        except RedisError as exc:  # render on through a short Redis outage; the next beat may get through
            log.warning("heartbeat of job %s failed: %s", job_id, exc)

    def _check(self, job_id: str) -> None:
        token = self._tokens.get(job_id)
        if token is None:
            return
        try:
            self._states[job_id] = self._jobs.check(job_id, token)
        except RedisError as exc:
            log.warning("could not read the state of job %s: %s", job_id, exc)
