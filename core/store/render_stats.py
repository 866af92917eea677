"""How well cross-request batching and the result cache work, counted in Redis. Torch-free.

Workers add to the counters after every batch, and note the cache's size after each trim; the API's
/metrics (or an operator with redis-cli, ``HGETALL filterviz:stats:render``) reads them: average batch
size, average queue delay, cache hits, cache entries and bytes.
"""

from dataclasses import dataclass

from redis import Redis

_KEY = "filterviz:stats:render"


@dataclass(frozen=True)
class RenderStatsSnapshot:
    batches: int = 0  # render batches run
    batch_jobs: int = 0  # jobs in them, in all
    batch_rows: int = 0  # rows rendered in them, in all (cached and shared pictures take none)
    queue_seconds: float = 0.0  # submit -> batch start, summed over the batches' jobs
    pictures_cached: int = 0  # pictures a job took from the cache or from a batch-mate's rows
    pictures_rendered: int = 0
    cache_entries: int = 0  # the result cache's entries, as its last trim left them
    cache_bytes: int = 0  # bytes of stored pictures kept then (what FILTERVIZ_CACHE_MAX_BYTES bounds)

    @property
    def average_batch_jobs(self) -> float:
        return self.batch_jobs / self.batches if self.batches else 0.0

    @property
    def average_queue_seconds(self) -> float:
        return self.queue_seconds / self.batch_jobs if self.batch_jobs else 0.0


class RenderStats:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def record_batch(self, jobs: int, rows: int, queue_seconds: float) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hincrby(_KEY, "batches", 1)
        pipe.hincrby(_KEY, "batch_jobs", jobs)
        pipe.hincrby(_KEY, "batch_rows", rows)
        pipe.hincrbyfloat(_KEY, "queue_seconds", queue_seconds)
        pipe.execute()

    def record_pictures(self, cached: int, rendered: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hincrby(_KEY, "pictures_cached", cached)
        pipe.hincrby(_KEY, "pictures_rendered", rendered)
        pipe.execute()

    def record_cache_size(self, entries: int, size_bytes: int) -> None:
        """What the cache holds after a trim (it is measured there: counting it costs a listing of the storage)."""
        self._redis.hset(_KEY, mapping={"cache_entries": entries, "cache_bytes": size_bytes})

    def read(self) -> RenderStatsSnapshot:
        fields: dict[str, str] = self._redis.hgetall(_KEY)
        return RenderStatsSnapshot(
            batches=int(fields.get("batches", 0)),
            batch_jobs=int(fields.get("batch_jobs", 0)),
            batch_rows=int(fields.get("batch_rows", 0)),
            queue_seconds=float(fields.get("queue_seconds", 0.0)),
            pictures_cached=int(fields.get("pictures_cached", 0)),
            pictures_rendered=int(fields.get("pictures_rendered", 0)),
            cache_entries=int(fields.get("cache_entries", 0)),
            cache_bytes=int(fields.get("cache_bytes", 0)),
        )
