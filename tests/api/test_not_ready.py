"""Until the workers have published every served model, the API refuses work it cannot validate (503 + Retry-After)."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from core.catalog import ModelEntry
from core.settings import Settings
from core.store import Stores
from tests.service_fixtures import SMALL_JOB


@pytest.fixture
def bare_client(scratch: tuple[Settings, Stores]) -> Iterator[TestClient]:
    with TestClient(create_app(scratch[0])) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/jobs"), ("GET", "/v1/models"), ("GET", "/readyz")])
def test_without_a_worker_the_api_is_not_ready(bare_client: TestClient, method: str, path: str) -> None:
    response = bare_client.request(method, path, json=SMALL_JOB if method == "POST" else None)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    problem = response.json()
    assert problem["status"] == 503 and problem["type"] == "/problems/not-ready"
    assert "worker" in problem["detail"]


def test_a_refused_job_leaves_no_record(bare_client: TestClient, scratch: tuple[Settings, Stores]) -> None:
    bare_client.post("/v1/jobs", json=SMALL_JOB)
    assert scratch[1].jobs.page(10) == ([], None)


def _entry(name: str) -> ModelEntry:
    return ModelEntry(
        name=name,
        description="",
        default_size=224,
        weights_file="",
        weights_available=False,
        num_classes=1000,
        layers=[],
    )


def test_a_served_model_still_loading_is_503_not_unknown(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch  # serves efficientnet_lite0 and vgg16; a worker published vgg16 only so far
    stores.workers.stamp("w@test")
    stores.catalog.publish(_entry("vgg16"))
    loading = "still loading: the workers have not published efficientnet_lite0 yet; retry shortly"

    with TestClient(create_app(settings)) as client:
        answers = [
            client.get("/readyz"),
            client.post("/v1/jobs", json=SMALL_JOB),
            client.get("/v1/models/efficientnet_lite0/layers"),
        ]
        unknown = client.get("/v1/models/resnet9000/layers")
        unserved = client.post("/v1/jobs", json={**SMALL_JOB, "model": "alexnet"})
        stores.catalog.publish(_entry("efficientnet_lite0"))
        ready = client.get("/readyz")

    for answer in answers:
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert answer.json()["type"] == "/problems/not-ready" and answer.json()["detail"] == loading
    assert unknown.status_code == 404 and unknown.json()["detail"] == "unknown model 'resnet9000'; available: vgg16"
    assert unserved.status_code == 422 and unserved.json()["errors"][0]["type"] == "unknown_model"
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "workers": ["w@test"]}


def test_layers_at_a_new_size_are_503_when_no_worker_answers(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    stores.catalog.publish(_entry("vgg16"))
    with TestClient(create_app(settings.model_copy(update={"describe_timeout_seconds": 0.3}))) as client:
        response = client.get("/v1/models/vgg16/layers", params={"size": 64})

    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["detail"] == "no worker listed the layers of vgg16 at 64x64 within 0.3 s"


def test_a_model_no_worker_could_publish_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match=r"unknown model\(s\) vgg17 in FILTERVIZ_MODELS; known: vgg16, vgg19, "):
        Settings(models=["vgg16", "vgg17"])
