"""Where a worker finds queued jobs that could share its batch: their ids per batch key (core.batching).

The job store files every new job under its batch key; a worker that takes a job claims queued
jobs of the same key too, while they fit and for a short wait window.
"""

from redis import Redis

from core.batching import batch_key
from core.spec import RenderSpec

_PENDING = "filterviz:pending:"  # + batch key: sorted set of queued job ids, scored by submit time


def pending_key(key: str) -> str:
    """The Redis key of batch ``key``'s pending jobs (the job store files a new job there when it creates it)."""
    return _PENDING + key


class PendingJobs:
    """Queued job ids per batch key. Only a hint: a job is run only by whoever claims it in the job store."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def discard(self, job_id: str, spec: RenderSpec) -> None:
        self._redis.zrem(pending_key(batch_key(spec)), job_id)

    def pop(self, key: str) -> tuple[str, float] | None:
        """The oldest pending job of batch ``key`` (id, submit time), taken off the list; None if none."""
        popped = self._redis.zpopmin(pending_key(key))
        return (popped[0][0], popped[0][1]) if popped else None

    def put_back(self, key: str, job_id: str, submitted: float) -> None:
        """Return a popped job that did not fit, in its place."""
        self._redis.zadd(pending_key(key), {job_id: submitted})
