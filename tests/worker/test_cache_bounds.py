"""The result cache forgets: it is bounded by bytes (least recently used go first), a picture is stored
once however many jobs show it, pictures go when no live job or cache entry needs them, and pictures
made from a photo go with the photo; on both storage backends (a local directory and an S3 bucket).
Jobs run through run_job with the scripted engine; the cleanup is the one the janitor runs."""

import os
import time

from core.pictures import Picture
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.connection import connect
from core.store.files import UPLOAD_SOURCE, filter_png
from tests.api_fixtures import small_png
from tests.service_fixtures import stored_bytes
from tests.worker.test_run_job import SPEC, ScriptedEngine, engine, scripted_key, scripted_png  # noqa: F401 (engine: a fixture)
from worker.cleanup import clean_storage
from worker.run import run_job


def stores_with(scratch: tuple[Settings, Stores], **changes: object) -> tuple[Settings, Stores]:
    settings = scratch[0].model_copy(update={"job_time_limit": 1, **changes})  # the sweep's grace: 1 s
    return settings, Stores.from_settings(settings)


def run(settings: Settings, stores: Stores, spec: RenderSpec, caller: str | None = None) -> str:
    job_id = stores.jobs.admit(spec, caller=caller).job.id
    run_job(job_id, stores, settings, worker="w1@test")
    assert stores.jobs.get(job_id).status == "succeeded", stores.jobs.get(job_id).error
    return job_id


def expire(settings: Settings, *keys: str) -> None:
    """What Redis does when a record's time is up."""
    assert connect(settings.redis_url).delete(*keys) == len(keys)


def age(stores: Stores, seconds: float) -> None:
    """Pretend every picture and cache entry was last used ``seconds`` ago."""
    for last_use in (stores.results.pictures.last_use, stores.cache.last_use):
        last_use.mark(last_use.all(), at=time.time() - seconds)


def pictures(stores: Stores) -> set[str]:
    return set(stores.results.pictures.sizes())


def test_a_picture_is_stored_once_however_many_jobs_show_it(
    any_scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = stores_with(any_scratch)
    first = run(settings, stores, SPEC)
    one_job = stored_bytes(settings)
    repeats = [run(settings, stores, SPEC) for _ in range(20)]

    assert len(engine.calls) == 1  # the repeats came from the cache
    assert len(pictures(stores)) == 3  # two filters and the grid, once
    assert stored_bytes(settings) - one_job < 20 * 400  # each repeat adds only its short list of pictures
    for job_id in (first, *repeats):
        assert stores.results.get(job_id, filter_png(4)) == scripted_png(4, 0)


def test_the_cache_keeps_the_most_recently_used_pictures_within_its_bound(any_scratch: tuple[Settings, Stores]) -> None:
    settings, stores = stores_with(any_scratch, cache_max_bytes=3500)
    keys = [f"{i:032x}" for i in range(6)]
    for i, key in enumerate(keys):
        stores.cache.put(key, Picture(filter=i, png=os.urandom(1000), activation=1.0, start_activation=0.0), photo=None)
    age(stores, 3600)
    for i, key in enumerate(keys):  # used in the order of their keys...
        stores.cache.last_use.mark([key], at=time.time() - 600 + i)
    assert stores.cache.get(keys[0]) is not None  # ... and the first once more, last

    done = clean_storage(stores)

    assert [key for key in keys if stores.cache.get(key) is not None] == [keys[0], keys[4], keys[5]]
    assert (done.cache_entries, done.pictures, done.freed_bytes) == (3, 3, 3000)
    assert sum(stores.results.pictures.sizes().values()) == 3000


def test_pictures_a_live_job_shows_are_kept_and_go_with_the_job(
    any_scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = stores_with(any_scratch, cache_max_bytes=0)
    job_id = run(settings, stores, SPEC)
    age(stores, 3600)

    clean_storage(stores)

    assert stores.results.get(job_id, filter_png(1)) == scripted_png(1, 0)  # live: kept, though over the bound
    assert stores.cache.get(_key(SPEC, 1)) is None  # but the cache holds nothing beyond it
    expire(settings, f"filterviz:job:{job_id}")
    done = clean_storage(stores)
    assert done.results == 1 and done.pictures == 3 and pictures(stores) == set()


def test_cache_entries_unused_for_the_retention_go(
    any_scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = stores_with(any_scratch, retention_seconds=600)
    job_id = run(settings, stores, SPEC)
    expire(settings, f"filterviz:job:{job_id}")
    age(stores, 300)
    assert clean_storage(stores).pictures == 0  # used 5 minutes ago: kept for the next request
    age(stores, 601)

    done = clean_storage(stores)

    assert done.cache_entries == 3 and done.pictures == 3 and pictures(stores) == set()


def test_pictures_made_from_a_photo_go_with_the_photo(
    any_scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = stores_with(any_scratch)
    photo = "e" * 32
    stores.upload_records.add(photo, "alice")
    stores.uploads.put(photo, UPLOAD_SOURCE, small_png())
    from_photo = RenderSpec.model_validate({**SPEC.model_dump(), "init": {"type": "image", "image_id": photo}})
    job_id = run(settings, stores, from_photo, caller="alice")
    noise_job = run(settings, stores, SPEC.model_copy(update={"filters": [9]}))
    expire(settings, f"filterviz:upload:{photo}")
    age(stores, 3600)

    done = clean_storage(stores)

    assert done.uploads == 1 and done.cache_entries == 3  # its two pictures' entries and its grid's
    assert stores.results.get(job_id, filter_png(4)) == scripted_png(4, 0)  # its live job still shows them
    expire(settings, f"filterviz:job:{job_id}", f"filterviz:job:{noise_job}")
    clean_storage(stores)
    remaining = pictures(stores)
    assert len(remaining) == 2 and stores.cache.get(_key(SPEC, 9)) is not None  # the noise picture stays cached
    assert remaining == {ref.sha256 for ref in _entry_refs(stores, SPEC, 9)}


def _key(spec: RenderSpec, filter_index: int) -> str:
    return scripted_key(spec, filter_index, 0)


def _entry_refs(stores: Stores, spec: RenderSpec, filter_index: int) -> list:
    cached = stores.cache.get(_key(spec, filter_index))
    grid = stores.cache.get_grid([_key(spec, filter_index)], [str(filter_index)])
    return [cached.png, *([grid] if grid else [])]


def test_files_of_an_older_cache_layout_are_removed(
    scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = stores_with(scratch)
    old = settings.cache_dir / ("f" * 32)
    old.mkdir(parents=True)
    (old / "picture.png").write_bytes(b"png")
    (old / "meta").write_bytes(b'{"activation": 1}')
    for path in old.iterdir():  # written an hour ago (a local directory only: S3 keeps its own times)
        os.utime(path, (time.time() - 3600,) * 2)

    clean_storage(stores)

    assert not old.exists()
