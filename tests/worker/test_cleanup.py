"""The cleanup keeps storage bounded: files of expired or deleted jobs and uploads go, live ones stay."""

import os
import time

from core.jobs import Limits
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.connection import connect
from core.store.files import GRID_PNG, UPLOAD_SOURCE
from testkit.services import wait_until
from worker.cleanup import TEMPORARY_MAX_AGE_SECONDS, clean_storage
from worker.janitor import Janitor

SPEC = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters=[0], steps=3, size=32)


def expire(settings: Settings, key: str) -> None:
    """What Redis does when a record's time is up."""
    assert connect(settings.redis_url).delete(key) == 1


def test_a_deleted_running_job_loses_its_worker(scratch: tuple[Settings, Stores]) -> None:
    stores = scratch[1]
    job_id = stores.jobs.create(SPEC).id
    token = stores.jobs.claim(job_id, "w1", 3, 30).token

    assert stores.jobs.delete(job_id)
    assert stores.jobs.beat(job_id, token, 1, 3) == "lost"  # the render stops at its next step
    assert not stores.jobs.succeed(job_id, token, [], "cpu", {}) and stores.jobs.get(job_id) is None
    assert stores.jobs.running_ids() == []


def test_the_cleanup_deletes_only_files_whose_record_is_gone(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    kept, expired = (stores.jobs.create(SPEC).id for _ in range(2))
    for job_id in (kept, expired):
        stores.results.put(job_id, GRID_PNG, b"png")
    old_image, new_image = "a" * 32, "b" * 32
    for image_id in (old_image, new_image):
        stores.upload_records.add(image_id, None)
        stores.uploads.put(image_id, UPLOAD_SOURCE, b"jpeg")
    dead_writer = settings.storage_dir / kept / ".tmp-abc"
    dead_writer.write_bytes(b"half a pic")
    os.utime(dead_writer, (time.time() - TEMPORARY_MAX_AGE_SECONDS - 1,) * 2)
    live_writer = settings.storage_dir / kept / ".tmp-def"
    live_writer.write_bytes(b"being written")
    expire(settings, f"filterviz:job:{expired}")
    expire(settings, f"filterviz:upload:{old_image}")

    done = clean_storage(stores)

    assert (done.results, done.uploads, done.temporaries) == (1, 1, 1)
    assert stores.results.keys() == [kept] and stores.results.get(kept, GRID_PNG) == b"png"
    assert stores.uploads.keys() == [new_image]
    assert not dead_writer.exists() and live_writer.exists()


def test_expired_jobs_stop_counting_against_the_queue_bound(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    one = Limits(max_queued=1)
    ghost = stores.jobs.admit(SPEC, limits=one).job.id
    expire(settings, f"filterviz:job:{ghost}")  # expired while queued (its message was lost)
    assert stores.jobs.admit(SPEC, limits=one).outcome == "queue_full"

    assert clean_storage(stores).pruned == 2  # from the queued set and the caller's active set
    assert stores.jobs.admit(SPEC, limits=one).outcome == "created"


def test_the_janitor_cleans_storage_every_interval(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    settings = settings.model_copy(update={"cleanup_interval_seconds": 0.2, "heartbeat_seconds": 0.05})
    janitor = Janitor(stores, settings, "w9@test", lambda job_id: None)
    janitor.start()
    try:
        orphan = "c" * 32
        stores.results.put(orphan, GRID_PNG, b"nobody's")
        wait_until(lambda: stores.results.keys() == [], 5, "the janitor's cleanup")
    finally:
        janitor.stop()
