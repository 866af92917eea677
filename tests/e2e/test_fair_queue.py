"""The queue with a real worker and a real API: jobs whose message was lost still run, callers take
turns, and a batch-mate's time-out fails only the job that ran too long."""

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from api.access import caller_id
from api.routes.jobs import request_fingerprint
from api.schemas import JobRequest
from core.settings import Settings
from core.store import Stores
from core.store.connection import connect
from testkit.services import ServiceProcess, service_settings_for, settings_env, start_api, start_worker, wait_until
from tests.api_fixtures import ALICE, BOB, KEY_DIGESTS, bearer
from tests.service_fixtures import finished, redis_db, wait_for_job

SOFT_LIMIT_SECONDS = 8
TINY = {"model": "efficientnet_lite0", "layer": "blocks.1", "filters": [0], "size": 32, "steps": 2}


@pytest.fixture(scope="module")
def queue_settings(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("fair-queue")
    settings = service_settings_for(redis_db(redis_server, 6), root).model_copy(
        update={
            "api_keys": KEY_DIGESTS,
            "max_filters": 64,
            "job_soft_time_limit": SOFT_LIMIT_SECONDS,
            "job_time_limit": SOFT_LIMIT_SECONDS + 30,
            "batch_wait_seconds": 1.0,  # room for a second request to join the first one's batch
            "dispatch_grace_seconds": 1.0,
        }
    )
    connect(settings.redis_url).flushdb()
    return settings


@pytest.fixture(scope="module")
def queue_stores(queue_settings: Settings) -> Stores:
    return Stores.from_settings(queue_settings)


@pytest.fixture(scope="module")
def queue_api(
    queue_settings: Settings, queue_stores: Stores, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fair-queue-processes")
    env = settings_env(queue_settings, root / "torch")
    worker = start_worker(queue_settings, env, "fair@test", root)
    processes: list[ServiceProcess] = [worker]
    try:
        wait_until(lambda: set(queue_stores.catalog.models()) == set(queue_settings.models), 90, "the catalog")
        api, url = start_api(env, root / "api.log")
        processes.append(api)
        yield url
    finally:
        for process in processes:
            process.stop()


def client_for(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60, headers=bearer(key))


def post(client: httpx.Client, spec: dict[str, object]) -> str:
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_a_job_whose_message_was_never_sent_still_runs(queue_api: str, queue_stores: Stores) -> None:
    """The state a crash between "record written" and "message sent" leaves: a record, no message."""
    spec = JobRequest.model_validate(TINY).spec()
    job_id = queue_stores.jobs.admit(spec, caller=caller_id(KEY_DIGESTS[0])).job.id

    with client_for(queue_api, ALICE) as client:
        job = wait_for_job(client, job_id, finished, timeout=30)

    assert job["status"] == "succeeded"


def test_a_replay_of_a_never_dispatched_job_dispatches_it(queue_api: str, queue_stores: Stores) -> None:
    body = {**TINY, "seed": 3}
    key = "crashed-before-sending"
    fingerprint = request_fingerprint(JobRequest.model_validate(body))
    spec = JobRequest.model_validate(body).spec()
    created = queue_stores.jobs.admit(spec, caller=caller_id(KEY_DIGESTS[0]), idempotency=(key, fingerprint))

    with client_for(queue_api, ALICE) as client:
        replay = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
        assert not queue_stores.jobs.undispatched(created.job.id)  # sent by the replay, not left to the sweep
        job = wait_for_job(client, created.job.id, finished, timeout=30)

    assert replay.status_code == 202 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == created.job.id
    assert job["status"] == "succeeded"


def test_a_callers_one_job_does_not_wait_behind_another_callers_many(queue_api: str, queue_stores: Stores) -> None:
    with client_for(queue_api, ALICE) as alice, client_for(queue_api, BOB) as bob:
        many = [post(alice, {**TINY, "steps": 200 if n == 0 else 2 + n}) for n in range(6)]  # no two batch-mates
        one = post(bob, {**TINY, "steps": 20})
        jobs = {job_id: wait_for_job(alice if job_id in many else bob, job_id, finished) for job_id in [*many, one]}

    assert {job["status"] for job in jobs.values()} == {"succeeded"}
    started = {job_id: datetime.fromisoformat(job["started_at"]) for job_id, job in jobs.items()}
    submitted = datetime.fromisoformat(jobs[one]["created_at"])
    waiting = [job_id for job_id in many if started[job_id] > submitted]  # still queued when the one came
    overtook = [job_id for job_id in waiting if started[job_id] < started[one]]
    assert len(waiting) >= 3, "the test needs the other caller's jobs to be waiting"
    assert len(overtook) <= 1, f"{len(overtook)} of the {len(waiting)} jobs waiting before it started first"


def test_a_batch_mates_time_out_fails_only_the_job_that_ran_too_long(queue_api: str) -> None:
    quick = {**TINY, "steps": 100, "size": 96}
    slow = {**quick, "layer": "blocks.6", "filters": "0-62"}  # same batch key: they share a batch
    with client_for(queue_api, ALICE) as client:
        small, big = post(client, quick), post(client, slow)
        jobs = {
            job_id: wait_for_job(client, job_id, finished, timeout=4 * SOFT_LIMIT_SECONDS + 60)
            for job_id in (small, big)
        }

    assert jobs[big]["status"] == "failed" and jobs[big]["error"]["type"] == "TimeLimitExceeded"
    assert jobs[small]["status"] == "succeeded", jobs[small]["error"]
    assert jobs[small]["attempts"] == 1  # handed back without using up an attempt
