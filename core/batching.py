"""Which queued jobs could share one batch, and where a worker finds them. Torch-free.

Jobs share a batch when everything but their filters, layer, seed and start image agrees: the
rows of a batch then run the same loop for the same number of steps (Triton's dynamic batching,
for render jobs). The job store files every new job under its batch key; a worker that takes a job
claims queued jobs of the same key too, while they fit and for a short wait window.
"""

import hashlib
import json

from redis import Redis

from core.spec import ImageInit, RenderSpec

_PENDING = "filterviz:pending:"  # + batch key: sorted set of queued job ids, scored by submit time


def batch_key(spec: RenderSpec) -> str:
    """Equal for specs whose rows may share a batch (layers may differ: the forward runs to the deepest)."""
    strength = spec.init.strength if isinstance(spec.init, ImageInit) else None
    shared = [spec.model, list(spec.size), spec.method, spec.precision, spec.objective, spec.steps, spec.step_size,
              spec.diversity, spec.snapshots, spec.init.type, strength]  # fmt: skip
    return hashlib.sha256(json.dumps(shared).encode()).hexdigest()[:32]


def pending_key(key: str) -> str:
    """The Redis key of batch ``key``'s pending jobs (the job store files a new job there when it creates it)."""
    return _PENDING + key


def batch_rows(spec: RenderSpec) -> int:
    """Batch rows the job needs at most (cached pictures need none)."""
    return len(spec.filters or ()) * spec.diversity


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
