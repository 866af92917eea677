"""Hostile numbers and paths: every one a clear 4xx, never a 5xx, never a file from outside the storage root."""

import http.client
from urllib.parse import urlsplit

import pytest

from core.settings import Settings
from tests.api_fixtures import AppClient


def job_body(**raw: str) -> str:
    """A small job's JSON, with ``raw`` JSON text (NaN and Infinity included) for some of its fields."""
    fields = {
        "model": '"efficientnet_lite0"',
        "layer": '"blocks.2"',
        "filters": "[0]",
        "steps": "3",
        "size": "32",
        **raw,
    }
    return "{" + ", ".join(f'"{name}": {value}' for name, value in fields.items()) + "}"


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("steps", "NaN"),
        ("steps", "Infinity"),
        ("steps", "-1"),
        ("steps", "0"),
        ("steps", "1e400"),
        ("steps", str(10**40)),
        ("steps", "3.5"),
        ("step_size", "NaN"),
        ("step_size", "-Infinity"),
        ("step_size", "1e309"),
        ("step_size", "-0.5"),
        ("step_size", "0"),
        ("size", "NaN"),
        ("size", "-32"),
        ("size", "[32, 1e30]"),
        ("size", str(2**70)),
        ("seed", "-1"),
        ("seed", str(2**63)),
        ("seed", "NaN"),
        ("diversity", "1e6"),
        ("diversity", "-2"),
        ("snapshots", "1000000000000"),
        ("snapshots", "-1"),
        ("filters", "[-1]"),
        ("filters", "[1e20]"),
        ("filters", f"[{10**30}]"),
        ("filters", '"0-99999999999"'),
        ("filters", '"1--2"'),
        ("filters", '"../3"'),
        ("filters", '"0-3,%2e%2e"'),
        ("filters", "[NaN]"),
        ("filters", "[]"),
        ("filters", '"\u0663"'),
        ("filters", '"\uff10-\uff13"'),
        ("filters", '"\\u0663"'),
        ("init", '{"type": "noise", "mean": NaN}'),
        ("init", '{"type": "noise", "std": Infinity}'),
        ("init", '{"type": "image", "image_id": "../../etc/passwd"}'),
        ("init", '{"type": "image", "image_id": "%2e%2e%2f%2e%2e%2fx"}'),
        ("init", '{"type": "image", "image_id": "ab", "strength": NaN}'),
    ],
)
def test_hostile_numbers_and_ids_in_a_job_are_422(app_client: AppClient, field: str, raw: str) -> None:
    body = job_body(**{field: raw})
    response = app_client().post("/v1/jobs", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"][:2] == ["body", field]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/jobs", {"limit": "NaN"}),
        ("/v1/jobs", {"limit": "1e3"}),
        ("/v1/jobs", {"limit": "-1"}),
        ("/v1/jobs", {"status": "../running"}),
        ("/v1/jobs", {"cursor": "../../" * 50}),
        (f"/v1/jobs/{'a' * 32}/filters/0.png", {"variant": "-1"}),
        (f"/v1/jobs/{'a' * 32}/filters/0.png", {"variant": "inf"}),
        ("/v1/models/efficientnet_lite0/layers", {"size": "Infinity"}),
        ("/v1/models/efficientnet_lite0/layers", {"size": "-64"}),
        ("/v1/models/efficientnet_lite0/layers", {"size": str(10**30)}),
    ],
)
def test_hostile_query_numbers_are_422(app_client: AppClient, path: str, params: dict[str, str]) -> None:
    response = app_client().get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][0] == "query"


SECRET = b"a file outside the storage root"
PATH_TRICKS = [
    "/v1/jobs/../../secret.png",
    "/v1/jobs/..%2F..%2Fsecret.png",
    "/v1/jobs/%2e%2e%2f%2e%2e%2fsecret.png/grid.png",
    "/v1/jobs/..%252F..%252Fsecret.png/grid.png",
    "/v1/jobs/%2E%2E/grid.png",
    "/v1/jobs/..%5C..%5Csecret.png/grid.png",
    f"/v1/jobs/{'a' * 32}%00/grid.png",
    f"/v1/jobs/{'a' * 32}/filters/..%2F..%2F..%2Fsecret.png",
    f"/v1/jobs/{'a' * 32}/filters/-1.png",
    f"/v1/jobs/{'a' * 32}/filters/{10**30}.png",
    f"/v1/jobs/{'a' * 32}/filters/0.png?variant=..%2F..",
    f"/v1/jobs/{'a' * 4096}",
    "/v1/jobs/%ff%fe/grid.png",
    "/v1/models/..%2F..%2Fsecret/layers",
    "/v1/images/../../secret.png",
]


def test_path_tricks_never_reach_outside_the_storage_root(api_url: str, service_settings: Settings) -> None:
    """Sent verbatim (http.client does not normalize paths the way browsers and httpx do)."""
    for folder in (service_settings.storage_dir.parent, service_settings.storage_dir, service_settings.upload_dir):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "secret.png").write_bytes(SECRET)
    address = urlsplit(api_url)
    for path in PATH_TRICKS:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        assert 400 <= response.status < 500, (path, response.status, body)
        assert SECRET not in body, path
