"""Restarts mid-run: the API killed and started again, Redis crashed and restarted from its append-only file.

Nothing is lost: every job queued or running at the time finishes, once; the worker and the API
reconnect by themselves, and the worker really consumes new jobs afterwards (Celery has been known
to sit idle after a broker reconnect).
"""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.store import Stores
from testkit.services import ServiceProcess, service_settings_for, settings_env, start_api, start_worker, wait_until
from tests.persistent_redis import PersistentRedis
from tests.service_fixtures import finished, submit, wait_for_job

LONG = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "0-3", "steps": 80, "size": 64}  # ~10 s
SHORT = {"model": "efficientnet_lite0", "layer": "blocks.1", "filters": [0], "steps": 2, "size": 32}


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[PersistentRedis]:
    (tmp_path / "redis").mkdir()
    server = PersistentRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_jobs_survive_an_api_restart_and_a_redis_crash(redis_aof: PersistentRedis, tmp_path: Path) -> None:
    settings = service_settings_for(redis_aof.url, tmp_path)
    env = settings_env(settings, tmp_path / "torch")
    stores = Stores.from_settings(settings)
    worker = start_worker(settings, env, "survivor@test", tmp_path)
    processes: list[ServiceProcess] = [worker]
    try:
        wait_until(lambda: stores.catalog.models(), 90, "the catalog")
        api, url = start_api(env, tmp_path / "api-1.log")
        processes.append(api)
        with httpx.Client(base_url=url, timeout=30) as client:
            long = submit(client, LONG)
            queued = [submit(client, {**SHORT, "seed": seed}) for seed in range(3)]
            keyed = client.post("/v1/jobs", json=SHORT, headers={"Idempotency-Key": "restart-1"}).json()
            wait_for_job(client, long["id"], lambda job: job["progress"]["step"] > 0)

            redis_aof.crash()  # while the long job renders
            during = client.get(f"/v1/jobs/{long['id']}")
            assert during.status_code == 503 and during.headers["retry-after"] == "5", during.text
            assert during.headers["content-type"] == "application/problem+json"
            time.sleep(settings.stale_after_seconds + 1)  # longer than a dead worker's heartbeat may lag
            redis_aof.start()
        api.kill()  # then the API dies ...

        api, url = start_api(env, tmp_path / "api-2.log")  # ... and another one takes over
        processes.append(api)
        with httpx.Client(base_url=url, timeout=30) as client:
            replay = client.post("/v1/jobs", json=SHORT, headers={"Idempotency-Key": "restart-1"})
            assert replay.status_code == 202 and replay.json()["id"] == keyed["id"]
            jobs = [long, *queued, keyed]
            results = [wait_for_job(client, job["id"], finished, timeout=120) for job in jobs]
            assert [job["status"] for job in results] == ["succeeded"] * len(jobs), [job["error"] for job in results]
            assert results[0]["attempts"] == 1  # the outage did not hand the running job to a second attempt
            after = wait_for_job(client, submit(client, {**SHORT, "seed": 99})["id"], finished, timeout=60)
            assert after["status"] == "succeeded"  # the worker consumes again after the broker came back
            listed = {job["id"] for job in client.get("/v1/jobs", params={"limit": 100}).json()["jobs"]}
            assert {job["id"] for job in jobs} | {after["id"]} <= listed
        assert "Connected to redis" in worker.log().split("Cannot connect to redis")[-1]
    finally:
        for process in reversed(processes):
            process.stop()
