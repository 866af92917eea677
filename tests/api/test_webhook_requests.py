"""A job may name a webhook: checked when it is submitted, shown on the job."""

from core.settings import Settings
from core.store import Stores
from tests.api_fixtures import AppClient

JOB = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": [0], "steps": 3, "size": 32}


def field_error(response: object) -> tuple[list, str]:
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    return error["loc"], error["msg"]


def test_a_webhook_is_kept_with_the_job_and_shown(app_client: AppClient, scratch: tuple[Settings, Stores]) -> None:
    client = app_client()  # the tests' settings allow loopback targets
    job = client.post("/v1/jobs", json={**JOB, "webhook": "http://127.0.0.1:9/hooks"}).json()

    assert job["webhook"] == "http://127.0.0.1:9/hooks" and "webhook" not in job["request"]
    assert scratch[1].jobs.get(job["id"]).webhook == "http://127.0.0.1:9/hooks"
    assert client.post("/v1/jobs", json=JOB).json()["webhook"] is None


def test_internal_targets_are_refused_unless_allowed(app_client: AppClient, scratch: tuple[Settings, Stores]) -> None:
    client = app_client(webhook_allow_private=False)
    for url, msg in [  # the start of the message
        ("http://127.0.0.1:9/hooks", "the webhook host '127.0.0.1' resolves to 127.0.0.1: loopback, private, "),
        ("http://169.254.169.254/", "the webhook host '169.254.169.254' resolves to 169.254.169.254"),
        ("gopher://example.com/", "a webhook must be an absolute http:// or https:// URL"),
    ]:
        loc, refusal = field_error(client.post("/v1/jobs", json={**JOB, "webhook": url}))
        assert loc == ["body", "webhook"] and refusal.startswith(msg), refusal
    long = "https://example.com/" + "a" * 2048
    assert field_error(client.post("/v1/jobs", json={**JOB, "webhook": long}))[0] == ["body", "webhook"]
    assert scratch[1].jobs.page(10)[0] == []


def test_without_a_signing_secret_no_webhook_is_accepted(app_client: AppClient) -> None:
    client = app_client(webhook_secret=None)
    assert field_error(client.post("/v1/jobs", json={**JOB, "webhook": "http://127.0.0.1:9/"})) == (
        ["body", "webhook"],
        "this deployment sends no webhooks (it has no signing secret); leave out webhook",
    )
