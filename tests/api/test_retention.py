"""Retention over the API: records expire after their time; DELETE removes a job and its pictures."""

from core.settings import Settings
from core.store import Stores
from core.store.connection import connect
from core.store.files import GRID_PNG
from tests.api_fixtures import AppClient, small_png

JOB = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": [0], "steps": 3, "size": 32}


def test_delete_removes_the_job_its_pictures_and_its_place_in_the_queue(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    stores = scratch[1]
    client = app_client(max_queued_jobs=1)
    job_id = client.post("/v1/jobs", json=JOB).json()["id"]
    stores.results.put(job_id, GRID_PNG, b"a picture")
    assert client.post("/v1/jobs", json=JOB).status_code == 503

    deleted = client.delete(f"/v1/jobs/{job_id}")

    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 404
    assert job_id not in stores.results.keys() and client.get("/v1/jobs").json()["jobs"] == []
    assert client.post("/v1/jobs", json=JOB).status_code == 202


def test_records_and_uploads_expire_after_their_retention(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    settings = scratch[0]
    client = app_client(retention_seconds=600, upload_retention_seconds=300)
    job_id = client.post("/v1/jobs", json=JOB).json()["id"]
    image = client.post("/v1/images", content=small_png(), headers={"content-type": "image/png"}).json()
    redis = connect(settings.redis_url)

    assert 590 <= redis.ttl(f"filterviz:job:{job_id}") <= 600
    assert 290 <= redis.ttl(f"filterviz:upload:{image['id']}") <= 300
