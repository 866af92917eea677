"""No shared disk: the API and two workers run as processes that have no path in common (each its own empty
working directory, TMPDIR and TORCH_HOME) and share only Redis and the S3 endpoint. Jobs succeed, an
upload made through the API starts a worker's job, the API serves the pictures, a SIGKILLed worker's
job is finished by the other, and that worker serves a repeat from the cache the first one filled."""

import io
import uuid
from pathlib import Path

import httpx
from PIL import Image

from core.settings import Settings
from core.store import Stores
from core.store.connection import connect
from core.store.objects import s3_client
from testkit.services import (
    S3_BUCKET,
    ServiceProcess,
    on_s3,
    service_settings_for,
    settings_env,
    start_api,
    start_worker,
    wait_until,
)
from tests.service_fixtures import redis_db, submit, wait_for_job

NOISE_JOB = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "0-1", "steps": 5, "size": 32}
WAIT = 300  # seconds, at most, for a job's next state (a fresh render process first imports torch)
LONG_JOB = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "2-3", "steps": 60, "size": 32}


def private_env(settings: Settings, home: Path) -> tuple[dict[str, str], Path]:
    """The environment and working directory of one process: nothing in them is another process's."""
    cwd, tmp = home / "cwd", home / "tmp"
    for folder in (cwd, tmp):
        folder.mkdir(parents=True)
    return {**settings_env(settings, home / "torch"), "TMPDIR": str(tmp)}, cwd


def png_from(client: httpx.Client, url: str) -> Image.Image:
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png", response.text
    image = Image.open(io.BytesIO(response.content), formats=["PNG"])
    image.load()
    return image


def test_the_service_runs_on_redis_and_a_bucket_alone(redis_server: str, s3_url: str, tmp_path: Path) -> None:
    prefix = f"no-shared-disk-{uuid.uuid4().hex}"
    # relative directories: were anything written to them, it would land in a process's own working directory
    base = service_settings_for(redis_db(redis_server, 10), Path("var")).model_copy(
        # one model: less for a worker to publish; a lost worker is noticed in seconds, a busy machine's is not lost
        update={"models": ["efficientnet_lite0"], "stale_after_seconds": 10.0}
    )
    settings = on_s3(base, s3_url, prefix)
    connect(settings.redis_url).flushdb()
    stores = Stores.from_settings(settings)
    logs = tmp_path / "logs"
    logs.mkdir()
    homes = {name: tmp_path / name for name in ("api", "w1", "w2")}
    processes: list[ServiceProcess] = []
    try:
        env, cwd = private_env(settings, homes["w1"])
        first = start_worker(settings, env, "w1@test", logs, cwd)
        processes.append(first)
        wait_until(lambda: set(stores.catalog.models()) == set(settings.models), 2 * WAIT, "the catalog")
        env, cwd = private_env(settings, homes["api"])
        api, url = start_api(env, logs / "api.log", cwd=cwd)
        processes.append(api)
        with httpx.Client(base_url=url, timeout=30) as client:
            photo = Image.new("RGB", (48, 32), (200, 120, 40))
            buffer = io.BytesIO()
            photo.save(buffer, format="PNG")
            uploaded = client.post("/v1/images", content=buffer.getvalue(), headers={"content-type": "image/png"})
            assert uploaded.status_code == 201, uploaded.text
            from_photo = {**NOISE_JOB, "init": {"type": "image", "image_id": uploaded.json()["id"]}}
            jobs = [submit(client, NOISE_JOB), submit(client, from_photo)]
            done = [
                wait_for_job(client, job["id"], lambda j: j["status"] in ("succeeded", "failed"), WAIT) for job in jobs
            ]
            assert [job["status"] for job in done] == ["succeeded", "succeeded"], done
            assert done[1]["request"]["size"] == [32, 32] and done[0]["results"] != done[1]["results"]
            for job in done:  # served by the API, from the bucket
                assert png_from(client, job["grid_url"]).size[0] > 32
                assert png_from(client, job["results"][0]["url"]).size == (32, 32)

            running = submit(client, LONG_JOB)
            wait_for_job(client, running["id"], lambda j: j["status"] == "running" and j["progress"]["step"] > 0, WAIT)
            first.kill()  # a machine lost mid-job
            assert stores.jobs.get(running["id"]).status == "running"
            env, cwd = private_env(settings, homes["w2"])
            second = start_worker(settings, env, "w2@test", logs, cwd)
            processes.append(second)
            rescued = wait_for_job(client, running["id"], lambda j: j["status"] in ("succeeded", "failed"), WAIT)
            assert rescued["status"] == "succeeded"
            record = stores.jobs.get(running["id"])
            assert record.worker == "w2@test" and record.attempts >= 2  # more where a busy machine missed beats
            assert png_from(client, rescued["grid_url"]).size[0] > 32

            cached_before = stores.render_stats.read().pictures_cached
            repeat = wait_for_job(client, submit(client, NOISE_JOB)["id"], lambda j: j["status"] == "succeeded", WAIT)
            assert stores.jobs.get(repeat["id"]).worker == "w2@test"
            assert stores.render_stats.read().pictures_cached - cached_before == 2  # rendered by w1, kept in S3
            assert [r["activation"] for r in repeat["results"]] == [r["activation"] for r in done[0]["results"]]
            assert client.get(repeat["grid_url"]).content == client.get(done[0]["grid_url"]).content
    finally:
        for process in reversed(processes):
            process.stop()

    for name, home in homes.items():  # nothing written to any process's working directory ...
        assert list((home / "cwd").rglob("*")) == [], name
    listed = s3_client(settings).list_objects_v2(Bucket=S3_BUCKET, Prefix=f"{prefix}/")  # ... all of it is here
    parts = {item["Key"].split("/")[1] for item in listed.get("Contents", [])}
    assert parts == {"results", "uploads", "cache"}
