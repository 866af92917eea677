"""Keeps storage bounded: deletes what expired or deleted jobs and uploads leave, and trims the cache.

Records expire in Redis by themselves (FILTERVIZ_RETENTION_SECONDS, FILTERVIZ_UPLOAD_RETENTION_SECONDS);
files do not, so a worker's janitor runs :func:`clean_storage` every FILTERVIZ_CLEANUP_INTERVAL_SECONDS.
A file is written only while its record exists (a job renders while its record lives; an upload's
record is written before its file), so a file without a record is never one still being made.
Pictures are stored once and referred to by jobs and cache entries: the cache's trim keeps those
live jobs refer to, and deletes those nothing refers to (core.store.picture_cache).
"""

import logging
from dataclasses import dataclass

from core.store import Stores

log = logging.getLogger(__name__)

TEMPORARY_MAX_AGE_SECONDS = 3600.0  # a write takes milliseconds: an older temporary file's writer died


@dataclass(frozen=True)
class Cleanup:
    results: int  # jobs whose picture lists were deleted
    uploads: int  # start images deleted
    temporaries: int  # half-written files of writers that died
    pruned: int  # ids of expired jobs dropped from the admission counts
    cache_entries: int = 0  # cache entries dropped: made from a deleted upload, idle, or beyond the bound
    pictures: int = 0  # pictures deleted: no job or cache entry refers to them any more
    freed_bytes: int = 0
    datasets: int = 0  # image sets (and their examples indexes) deleted: expired, deleted, or never recorded


def clean_storage(stores: Stores) -> Cleanup:
    job_ids = stores.results.keys()
    live = stores.jobs.existing(job_ids)
    for job_id in set(job_ids) - live:
        stores.results.delete(job_id)
    image_ids = stores.uploads.keys()
    expired = set(image_ids) - stores.upload_records.known(image_ids)
    for image_id in expired:
        stores.uploads.delete(image_id)
    forgotten = stores.cache.forget_photos(expired)
    trimmed = stores.cache.trim(stores.results.referenced(live))
    stores.render_stats.record_cache_size(trimmed.kept_entries, trimmed.kept_bytes)  # for /metrics
    temporaries = sum(
        storage.discard_temporaries(TEMPORARY_MAX_AGE_SECONDS) for storage in (stores.results, stores.uploads)
    )
    done = Cleanup(
        results=len(job_ids) - len(live),
        uploads=len(expired),
        temporaries=temporaries,
        pruned=stores.jobs.prune(),
        cache_entries=forgotten + trimmed.entries,
        pictures=trimmed.pictures,
        freed_bytes=trimmed.bytes,
        datasets=stores.datasets.sweep(TEMPORARY_MAX_AGE_SECONDS),
    )
    if any(vars(done).values()):
        log.info("cleanup: %s", done)
    return done
