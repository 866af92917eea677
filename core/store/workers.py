"""Which workers are alive: each worker's janitor stamps its name here every few seconds."""

from redis import Redis

_WORKERS = "filterviz:workers"  # sorted set: worker name scored by its last stamp (Redis clock)


class WorkerRegistry:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def stamp(self, name: str) -> None:
        self._redis.zadd(_WORKERS, {name: self._now()})

    def remove(self, name: str) -> None:
        self._redis.zrem(_WORKERS, name)

    def alive(self, within_seconds: float) -> list[str]:
        """Workers stamped in the last ``within_seconds``."""
        return self._redis.zrangebyscore(_WORKERS, self._now() - within_seconds, "+inf")

    def _now(self) -> float:
        seconds, micros = self._redis.time()
        return seconds + micros / 1e6
