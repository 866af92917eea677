"""Access control: API keys, each key's own jobs and images, rate and job limits, CORS."""

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from core.store import Stores
from tests.api_fixtures import ALICE, BOB, KEY_DIGESTS, AppClient, bearer, small_png

JOB = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": [0, 1], "steps": 3, "size": 32}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", f"/v1/jobs/{'a' * 32}"),
        ("DELETE", f"/v1/jobs/{'a' * 32}"),
        ("POST", "/v1/images"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/efficientnet_lite0/layers"),
    ],
)
def test_with_keys_configured_every_v1_route_needs_a_valid_one(app_client: AppClient, method: str, path: str) -> None:
    client = app_client(api_keys=KEY_DIGESTS)
    for headers, detail, challenge in [
        ({}, "this API needs an API key: send `Authorization: Bearer <key>`", 'Bearer realm="filterviz"'),
        (bearer("not-a-key"), "the API key is not valid", 'Bearer realm="filterviz", error="invalid_token"'),
        ({"Authorization": f"Basic {ALICE}"}, "this API needs an API key", 'Bearer realm="filterviz"'),
    ]:
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == challenge
        assert response.json()["detail"].startswith(detail) and response.json()["type"] == "/problems/unauthorized"
    assert client.request(method, path, headers=bearer(ALICE)).status_code not in (401, 403)


def test_health_and_the_openapi_document_stay_open(app_client: AppClient) -> None:
    client = app_client(api_keys=KEY_DIGESTS)

    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503  # no worker: not ready, but not unauthorized
    document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "401" in document["paths"]["/v1/jobs"]["post"]["responses"]


def test_a_key_sees_only_its_own_jobs(app_client: AppClient, scratch: tuple[Settings, Stores]) -> None:
    client = app_client(api_keys=KEY_DIGESTS)
    job = client.post("/v1/jobs", json=JOB, headers=bearer(ALICE)).json()
    job_id = job["id"]
    scratch[1].results.put(job_id, "grid.png", b"alice's picture")

    for method, path in [
        ("GET", f"/v1/jobs/{job_id}"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
        ("DELETE", f"/v1/jobs/{job_id}"),
        ("GET", f"/v1/jobs/{job_id}/grid.png"),
        ("GET", f"/v1/jobs/{job_id}/filters/0.png"),
    ]:
        response = client.request(method, path, headers=bearer(BOB))
        assert response.status_code == 404 and response.json()["detail"] == f"no job '{job_id}'", (method, path)
    assert client.get("/v1/jobs", headers=bearer(BOB)).json()["jobs"] == []

    assert client.get(f"/v1/jobs/{job_id}", headers=bearer(ALICE)).json()["status"] == "queued"
    assert [j["id"] for j in client.get("/v1/jobs", headers=bearer(ALICE)).json()["jobs"]] == [job_id]
    assert scratch[1].results.get(job_id, "grid.png") == b"alice's picture"  # bob's DELETE did nothing


def test_a_key_can_start_only_from_its_own_uploads(app_client: AppClient) -> None:
    client = app_client(api_keys=KEY_DIGESTS)
    image = client.post(
        "/v1/images", content=small_png(), headers={"content-type": "image/png", **bearer(ALICE)}
    ).json()
    job = {**JOB, "init": {"type": "image", "image_id": image["id"]}}

    assert client.post("/v1/jobs", json=job, headers=bearer(ALICE)).status_code == 202
    refused = client.post("/v1/jobs", json=job, headers=bearer(BOB))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["msg"] == f"no uploaded image '{image['id']}'; upload one with POST /v1/images"
    # the same bytes uploaded by bob make the image his too
    client.post("/v1/images", content=small_png(), headers={"content-type": "image/png", **bearer(BOB)})
    assert client.post("/v1/jobs", json=job, headers=bearer(BOB)).status_code == 202


def test_the_rate_limit_is_per_key_and_says_when_to_retry(app_client: AppClient) -> None:
    client = app_client(api_keys=KEY_DIGESTS, rate_limit_per_minute=3)
    statuses = [client.get("/v1/jobs", headers=bearer(ALICE)).status_code for _ in range(3)]
    limited = client.get("/v1/jobs", headers=bearer(ALICE))

    assert statuses == [200, 200, 200] and limited.status_code == 429
    assert limited.json()["type"] == "/problems/rate-limited"
    assert limited.json()["detail"].startswith("more than 3 requests in a minute; try again in ")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert client.get("/v1/jobs", headers=bearer(BOB)).status_code == 200
    assert client.get("/healthz").status_code == 200  # never limited


def test_an_address_that_keeps_guessing_keys_is_refused_before_its_keys_are_checked(app_client: AppClient) -> None:
    guesser = app_client(api_keys=KEY_DIGESTS, auth_failures_per_minute=3)
    neighbour = TestClient(guesser.app, client=("192.0.2.7", 50000), raise_server_exceptions=False)
    guesses = [guesser.get("/v1/jobs", headers=bearer(f"guess-{n}")).status_code for n in range(3)]
    refused = [guesser.get("/v1/jobs", headers=bearer(key)) for key in ("guess-4", ALICE)]

    assert guesses == [401, 401, 401] and [r.status_code for r in refused] == [429, 429]  # even the right key
    assert refused[0].json()["type"] == "/problems/too-many-failed-attempts"
    assert refused[0].json()["detail"].startswith("3 failed API-key attempts from this address within a minute; ")
    assert 1 <= int(refused[1].headers["retry-after"]) <= 60
    assert neighbour.get("/v1/jobs", headers=bearer(ALICE)).status_code == 200  # counted per client address
    assert guesser.get("/healthz").status_code == 200


def test_a_key_may_have_only_so_many_unfinished_jobs(app_client: AppClient) -> None:
    client = app_client(api_keys=KEY_DIGESTS, max_active_jobs_per_key=2)
    first, _ = (client.post("/v1/jobs", json=JOB, headers=bearer(ALICE)).json() for _ in range(2))
    refused = client.post("/v1/jobs", json=JOB, headers=bearer(ALICE))

    assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
    assert refused.json()["type"] == "/problems/too-many-jobs"
    assert refused.json()["detail"] == "2 of your jobs are queued or running, the most allowed; wait for one to finish"
    assert client.post("/v1/jobs", json=JOB, headers=bearer(BOB)).status_code == 202
    assert client.post(f"/v1/jobs/{first['id']}/cancel", headers=bearer(ALICE)).status_code == 200
    assert client.post("/v1/jobs", json=JOB, headers=bearer(ALICE)).status_code == 202


def test_filters_per_job_are_capped_for_every_key(app_client: AppClient) -> None:
    client = app_client(api_keys=KEY_DIGESTS, max_filters=2)
    refused = client.post("/v1/jobs", json={**JOB, "filters": "0-2"}, headers=bearer(ALICE))

    assert refused.status_code == 422
    assert refused.json()["errors"][0]["msg"] == "3 filters requested; at most 2 pictures per job"


def test_a_full_queue_answers_503_with_retry_after_and_creates_nothing(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    client = app_client(max_queued_jobs=2)
    accepted = [client.post("/v1/jobs", json=JOB).status_code for _ in range(2)]
    full = client.post("/v1/jobs", json=JOB)

    assert accepted == [202, 202] and full.status_code == 503
    assert full.headers["retry-after"] == "5" and full.json()["type"] == "/problems/queue-full"
    assert full.json()["detail"] == "2 jobs are waiting for a worker, the most this service queues; try again later"
    assert len(scratch[1].jobs.page(10)[0]) == 2

    running = scratch[1].jobs.page(10)[0][0].id
    scratch[1].jobs.claim(running, "w1", 3, 30)  # a worker took one: a place is free
    assert client.post("/v1/jobs", json=JOB).status_code == 202


def test_cors_answers_only_configured_origins(app_client: AppClient) -> None:
    client = app_client(cors_origins=["https://viz.example.com"])
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "idempotency-key"}

    allowed = client.options("/v1/jobs", headers={"Origin": "https://viz.example.com", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://viz.example.com"
    assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
    simple = client.get("/healthz", headers={"Origin": "https://viz.example.com"})
    assert simple.headers["access-control-allow-origin"] == "https://viz.example.com"
    assert "location" in simple.headers["access-control-expose-headers"].lower()

    foreign = client.options("/v1/jobs", headers={"Origin": "https://evil.example.net", **preflight})
    assert foreign.status_code == 400 and "access-control-allow-origin" not in foreign.headers
    simple = client.get("/healthz", headers={"Origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in simple.headers
    no_cors = app_client().get("/healthz", headers={"Origin": "https://viz.example.com"})
    assert "access-control-allow-origin" not in no_cors.headers  # off by default
