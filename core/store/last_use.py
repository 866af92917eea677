"""When each stored picture and cache entry was last used: a Redis sorted set per storage. Torch-free.

Kept in Redis because it must work alike for a local directory and an S3 bucket, whose objects
cannot be touched (a copy onto itself would cost a PUT per use), and because every process already
shares Redis. Something never marked (written before Redis lost it) counts as used when it was written.
"""

import time
from collections.abc import Iterable
from typing import cast

from redis import Redis

_LAST_USE = "filterviz:last-use:"  # + family + ":" + storage location -> {name: epoch seconds}


class LastUse:
    def __init__(self, redis: Redis, family: str, location: str) -> None:
        self._redis, self._key = redis, f"{_LAST_USE}{family}:{location}"

    def mark(self, names: Iterable[str], at: float | None = None) -> None:
        """Used now (or ``at``)."""
        when = time.time() if at is None else at
        scores = dict.fromkeys(names, when)
        if scores:
            self._redis.zadd(self._key, scores)

    def all(self) -> dict[str, float]:
        """Every recorded last use, by name."""
        return dict(cast(list[tuple[str, float]], self._redis.zrange(self._key, 0, -1, withscores=True)))

    def forget(self, names: Iterable[str]) -> None:
        listed = list(names)
        if listed:
            self._redis.zrem(self._key, *listed)
