"""Keeps storage bounded: deletes the files of jobs and uploads whose records expired or were deleted.

Records expire in Redis by themselves (FILTERVIZ_RETENTION_SECONDS, FILTERVIZ_UPLOAD_RETENTION_SECONDS);
files do not, so a worker's janitor runs :func:`clean_storage` every FILTERVIZ_CLEANUP_INTERVAL_SECONDS.
A file is written only while its record exists (a job renders while its record lives; an upload's
record is written before its file), so a file without a record is never one still being made.
"""

import logging
from dataclasses import dataclass

from core.stores import Stores

log = logging.getLogger(__name__)

TEMPORARY_MAX_AGE_SECONDS = 3600.0  # a write takes milliseconds: an older temporary file's writer died


@dataclass(frozen=True)
class Cleanup:
    results: int  # jobs whose files were deleted
    uploads: int  # start images deleted
    temporaries: int  # half-written files of writers that died
    pruned: int  # ids of expired jobs dropped from the admission counts


def clean_storage(stores: Stores) -> Cleanup:
    job_ids = stores.results.keys()
    orphans = set(job_ids) - stores.jobs.existing(job_ids)
    for job_id in orphans:
        stores.results.delete(job_id)
    image_ids = stores.uploads.keys()
    expired = set(image_ids) - stores.upload_records.known(image_ids)
    for image_id in expired:
        stores.uploads.delete(image_id)
    temporaries = sum(
        storage.discard_temporaries(TEMPORARY_MAX_AGE_SECONDS) for storage in (stores.results, stores.uploads)
    )
    done = Cleanup(len(orphans), len(expired), temporaries, stores.jobs.prune())
    if any(vars(done).values()):
        log.info("cleanup: %s", done)
    return done
