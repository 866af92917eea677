"""Idempotency-Key on POST /v1/jobs: a retried request gets the job the first one made, never a second."""

from concurrent.futures import ThreadPoolExecutor

from api.routes.jobs import request_fingerprint
from api.schemas import JobRequest
from core.queues import RENDER_QUEUE
from core.settings import Settings
from core.store import Stores
from core.store.connection import connect
from tests.api_fixtures import ALICE, BOB, KEY_DIGESTS, AppClient, bearer

JOB = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "0-1", "steps": 3, "size": 32}


def test_the_same_key_and_body_return_the_same_job(app_client: AppClient, scratch: tuple[Settings, Stores]) -> None:
    client = app_client()
    key = {"Idempotency-Key": "order-7f3a"}
    first = client.post("/v1/jobs", json=JOB, headers=key)
    again = client.post("/v1/jobs", json={**JOB, "filters": [1, 0]}, headers=key)  # the same request, normalized

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert len(scratch[1].jobs.page(10)[0]) == 1
    assert client.post("/v1/jobs", json=JOB).json()["id"] != first.json()["id"]  # no key: a new job


def test_the_same_key_with_another_body_is_refused(app_client: AppClient, scratch: tuple[Settings, Stores]) -> None:
    client = app_client()
    first = client.post("/v1/jobs", json=JOB, headers={"Idempotency-Key": "k1"}).json()
    reused = client.post("/v1/jobs", json={**JOB, "steps": 4}, headers={"Idempotency-Key": "k1"})

    assert reused.status_code == 422 and reused.headers["content-type"] == "application/problem+json"
    problem = reused.json()
    assert problem["type"] == "/problems/idempotency-key-reused"
    assert problem["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert problem["detail"] == (
        f"key 'k1' was already used for another request (job {first['id']}); send a new key for a new request"
    )
    assert len(scratch[1].jobs.page(10)[0]) == 1


def test_concurrent_retries_create_one_job(app_client: AppClient, scratch: tuple[Settings, Stores]) -> None:
    client = app_client()
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(lambda _: client.post("/v1/jobs", json=JOB, headers={"Idempotency-Key": "k"}), range(8))
        )

    assert {response.status_code for response in responses} == {202}
    assert len({response.json()["id"] for response in responses}) == 1
    assert len(scratch[1].jobs.page(10)[0]) == 1


def test_keys_are_per_api_key_and_forgotten_with_their_job(app_client: AppClient) -> None:
    client = app_client(api_keys=KEY_DIGESTS)
    key = {"Idempotency-Key": "same-key"}
    alice = client.post("/v1/jobs", json=JOB, headers={**key, **bearer(ALICE)}).json()
    bob = client.post("/v1/jobs", json=JOB, headers={**key, **bearer(BOB)}).json()
    assert alice["id"] != bob["id"]

    assert client.delete(f"/v1/jobs/{alice['id']}", headers=bearer(ALICE)).status_code == 204
    renewed = client.post("/v1/jobs", json={**JOB, "steps": 9}, headers={**key, **bearer(ALICE)})
    assert renewed.status_code == 202 and renewed.json()["id"] != alice["id"]


def test_a_malformed_key_is_a_422_naming_the_header(app_client: AppClient) -> None:
    client = app_client()
    for bad in ("x" * 256, "with space", ""):
        response = client.post("/v1/jobs", json=JOB, headers={"Idempotency-Key": bad})
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


def test_a_replay_sends_the_message_its_first_request_never_sent(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    settings, stores = scratch
    client = app_client()
    broker = connect(settings.redis_url)
    body, key = {**JOB, "seed": 4}, "crashed-between-the-writes"
    request = JobRequest.model_validate(body)
    crashed = stores.jobs.admit(request.spec(), idempotency=(key, request_fingerprint(request))).job  # no message

    replays = [client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key}) for _ in range(2)]

    assert [r.json()["id"] for r in replays] == [crashed.id] * 2
    assert not stores.jobs.undispatched(crashed.id)
    assert broker.llen(RENDER_QUEUE) == 1  # sent by the first replay only
