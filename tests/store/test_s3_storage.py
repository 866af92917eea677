"""Object storage in an S3 bucket, over HTTP against moto's S3 server: whole objects, listing and deletion
under a prefix, verified reads, no half-written object ever seen, presigned redirects served by a real API
process, and the picture cache's bound kept in the bucket."""

import io
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from core.errors import DamagedPicture, StorageError
from core.pictures import Picture
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.connection import connect
from core.store.files import GRID_PNG, PICTURES, PictureRef
from core.store.objects import S3Storage, s3_client
from testkit.services import S3_BUCKET, on_s3, service_settings_for, settings_env, start_api
from tests.api_fixtures import small_png
from tests.service_fixtures import redis_db
from worker.cleanup import clean_storage

SPEC = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters=[0], steps=5, size=32)


def fresh_prefix() -> str:
    return f"test-{uuid.uuid4().hex}/"


@pytest.fixture
def bucket(s3_url: str, scratch: tuple[Settings, Stores]) -> tuple[S3Storage, object]:
    """An S3Storage on a prefix of its own, and a boto3 client to look at the bucket behind its back."""
    client = s3_client(on_s3(scratch[0], s3_url, ""))
    return S3Storage(client, S3_BUCKET, fresh_prefix()), client


def keys_under(client: object, prefix: str) -> dict[str, int]:
    listed = client.list_objects_v2(Bucket=S3_BUCKET, Prefix=prefix)  # type: ignore[attr-defined]
    return {item["Key"]: item["Size"] for item in listed.get("Contents", [])}


def test_objects_are_put_read_listed_and_deleted_under_the_prefix(bucket: tuple[S3Storage, object]) -> None:
    storage, client = bucket
    storage.put("pictures/" + "a" * 64, b"a picture")
    storage.put(f"{'b' * 32}/pictures", b"a list")
    storage.put(f"{'b' * 32}/pictures", b"a longer list")  # replaced whole

    assert storage.get(f"{'b' * 32}/pictures") == b"a longer list" and storage.get("pictures/" + "c" * 64) is None
    assert storage.head("pictures/" + "a" * 64).size == 9 and storage.head("nothing") is None
    assert sorted(o.name for o in storage.list()) == [f"{'b' * 32}/pictures", "pictures/" + "a" * 64]
    assert [o.name for o in storage.list("pictures/")] == ["pictures/" + "a" * 64]
    assert sorted(keys_under(client, storage.location.removeprefix(f"s3://{S3_BUCKET}/"))) == [
        f"{storage.location.removeprefix(f's3://{S3_BUCKET}/')}{name}"
        for name in (f"{'b' * 32}/pictures", "pictures/" + "a" * 64)
    ]
    storage.delete("pictures/" + "a" * 64)
    storage.delete("pictures/" + "a" * 64)  # twice is fine
    assert [o.name for o in storage.list()] == [f"{'b' * 32}/pictures"]


@pytest.mark.parametrize("name", ["../escape", "/absolute", "UPPER/case", "a//b", "a/../b", ""])
def test_names_that_could_leave_the_prefix_are_refused(bucket: tuple[S3Storage, object], name: str) -> None:
    storage, _ = bucket
    with pytest.raises(ValueError, match="is not allowed"):
        storage.put(name, b"x")
    assert storage.list() == []


def test_a_reader_sees_an_object_whole_or_not_at_all(bucket: tuple[S3Storage, object]) -> None:
    """One writer replaces a 2 MB object over and over, readers read it meanwhile: every read is one whole version."""
    storage, _ = bucket
    versions = [bytes([i]) * 2_000_000 for i in range(3)]
    storage.put("big", versions[0])
    stop, seen, wrong = threading.Event(), [], []

    def read() -> None:
        while not stop.is_set() and len(seen) < 200:
            data = storage.get("big")
            (seen if data in versions else wrong).append(None if data is None else len(data))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    for i in range(12):
        storage.put("big", versions[i % 3])
    stop.set()
    for reader in readers:
        reader.join(30)

    assert wrong == [] and len(seen) > 0


def test_an_unreachable_bucket_is_a_storage_error_naming_it(scratch: tuple[Settings, Stores]) -> None:
    from filterviz.redis_server import free_port

    settings = on_s3(scratch[0], f"http://127.0.0.1:{free_port()}", "nowhere")  # nothing listens there
    storage = S3Storage(s3_client(settings), S3_BUCKET, "nowhere/")

    with pytest.raises(StorageError, match=f"cannot store files in s3://{S3_BUCKET}/nowhere/: "):
        storage.put("grid.png", b"png")


def test_a_picture_whose_bytes_changed_in_the_bucket_is_reported_and_its_size_checked_before_a_redirect(
    any_s3: tuple[Settings, Stores],
) -> None:
    pictures = any_s3[1].results.pictures
    ref = pictures.add(b"the picture")
    pictures.objects.put(f"{PICTURES}/{ref.sha256}", b"the pic")

    with pytest.raises(DamagedPicture, match="7 of its 11 bytes are stored"):
        pictures.read(ref)
    with pytest.raises(DamagedPicture, match="7 of its 11 bytes are stored"):
        pictures.presigned_url(ref, 60, "image/png", "immutable")
    assert pictures.presigned_url(PictureRef.of(b"never stored"), 60, "image/png", "immutable") is None


def test_the_cache_keeps_one_copy_of_each_picture_within_its_bound_in_the_bucket(
    any_s3: tuple[Settings, Stores],
) -> None:
    settings, stores = any_s3
    settings = settings.model_copy(update={"cache_max_bytes": 3500, "job_time_limit": 1})
    stores = Stores.from_settings(settings)
    same = os.urandom(1000)
    for i in range(6):  # six entries, two of them the same picture
        png = same if i in (0, 5) else os.urandom(1000)
        stores.cache.put(f"{i:032x}", Picture(filter=i, png=png, activation=1.0, start_activation=0.0), photo=None)
    client = s3_client(settings)
    assert len(keys_under(client, f"{settings.s3_prefix}/results/{PICTURES}/")) == 5  # the shared picture once
    pictures_used = stores.results.pictures.last_use
    pictures_used.mark(pictures_used.all(), at=time.time() - 3600)  # past the sweep's grace
    for i in range(6):  # used in the order of their keys
        stores.cache.last_use.mark([f"{i:032x}"], at=time.time() - 600 + i)

    clean_storage(stores)

    in_bucket = keys_under(client, f"{settings.s3_prefix}/results/{PICTURES}/")
    assert len(in_bucket) == 3 and sum(in_bucket.values()) <= 3500
    assert len(keys_under(client, f"{settings.s3_prefix}/cache/")) == 4  # the oldest shows a picture kept anyway
    assert [stores.cache.get(f"{i:032x}") is not None for i in range(6)] == [True, False, False, True, True, True]


@pytest.fixture
def any_s3(s3_url: str, scratch: tuple[Settings, Stores]) -> tuple[Settings, Stores]:
    settings = on_s3(scratch[0], s3_url, fresh_prefix().rstrip("/"))
    return settings, Stores.from_settings(settings)


@pytest.fixture(scope="module")
def redirecting_api(
    redis_server: str, s3_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Stores]]:
    """A real API process on S3 with FILTERVIZ_PICTURE_DELIVERY=redirect (short-lived URLs), and its stores."""
    root = tmp_path_factory.mktemp("redirecting")
    base = service_settings_for(redis_db(redis_server, 9), root)
    settings = on_s3(base, s3_url, fresh_prefix().rstrip("/")).model_copy(
        update={"picture_delivery": "redirect", "presign_seconds": 60}
    )
    connect(settings.redis_url).flushdb()
    process, url = start_api(settings_env(settings, root / "torch"), root / "api.log")
    try:
        yield url, Stores.from_settings(settings)
    finally:
        process.stop()


def succeeded_job(stores: Stores, png: bytes) -> str:
    job_id = stores.jobs.create(SPEC).id
    token = stores.jobs.claim(job_id, "w1@test", 3, 30).token
    stores.results.put(job_id, GRID_PNG, png)
    assert stores.jobs.succeed(job_id, token, [], "cpu", {})
    return job_id


def test_a_picture_is_a_redirect_to_a_presigned_url_that_serves_it(
    redirecting_api: tuple[str, Stores], s3_url: str
) -> None:
    url, stores = redirecting_api
    png = small_png()
    job_id = succeeded_job(stores, png)
    etag = f'"{PictureRef.of(png).sha256[:32]}"'

    with httpx.Client(base_url=url, timeout=30) as api:
        answer = api.get(f"/v1/jobs/{job_id}/grid.png")
        again = api.get(f"/v1/jobs/{job_id}/grid.png", headers={"If-None-Match": etag})
    picture = httpx.get(answer.headers["location"], timeout=30)  # from the bucket, no credentials

    assert answer.status_code == 307 and answer.headers["etag"] == etag
    assert answer.headers["cache-control"] == "no-store"  # the URL expires: the redirect must not outlive it
    assert answer.headers["location"].startswith(f"{s3_url}/{S3_BUCKET}/")  # path-style, at the bucket's endpoint
    assert "X-Amz-Signature=" in answer.headers["location"] and "X-Amz-Expires=60" in answer.headers["location"]
    assert picture.status_code == 200 and picture.content == png
    assert picture.headers["content-type"] == "image/png"
    assert picture.headers["cache-control"] == "public, max-age=31536000, immutable"
    Image.open(io.BytesIO(picture.content), formats=["PNG"]).load()
    assert again.status_code == 304 and again.headers["etag"] == etag and again.content == b""


def test_a_redirect_is_refused_for_a_picture_gone_from_the_bucket(redirecting_api: tuple[str, Stores]) -> None:
    url, stores = redirecting_api
    buffer = io.BytesIO()
    Image.new("RGB", (9, 9), (200, 10, 30)).save(buffer, format="PNG")  # a picture of its own
    png = buffer.getvalue()
    job_id = succeeded_job(stores, png)
    stores.results.pictures.delete(PictureRef.of(png).sha256)

    answer = httpx.get(f"{url}/v1/jobs/{job_id}/grid.png", timeout=30)

    assert answer.status_code == 404 and answer.json()["detail"] == f"grid.png of job {job_id} is no longer stored"


def test_redirects_need_s3(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="FILTERVIZ_PICTURE_DELIVERY=redirect needs FILTERVIZ_STORAGE_BACKEND=s3"):
        Settings(picture_delivery="redirect", storage_dir=tmp_path)
    with pytest.raises(ValueError, match="FILTERVIZ_STORAGE_BACKEND=s3 needs FILTERVIZ_S3_BUCKET"):
        Settings(storage_backend="s3")
