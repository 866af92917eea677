"""Every 4xx of the jobs API, over real HTTP, as RFC 9457 problem documents naming the field at fault."""

import httpx
import pytest

from tests.service_fixtures import SMALL_JOB

PROBLEM_JSON = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


def field_errors(response: httpx.Response) -> list[tuple[list, str]]:
    body = problem(response, 422)
    assert body["type"] == "/problems/invalid-request"
    return [(error["loc"], error["msg"]) for error in body["errors"]]


@pytest.mark.parametrize(
    ("changes", "loc", "msg"),
    [
        (
            {"model": "resnet9000"},
            ["body", "model"],
            "unknown model 'resnet9000'; available: efficientnet_lite0, vgg16",
        ),
        ({"layer": "blocks.99"}, ["body", "layer"], "unknown layer 'blocks.99' of efficientnet_lite0; valid layers: "),
        (
            {"filters": "38-41"},
            ["body", "filters"],
            "filter 40, 41 out of range: layer blocks.2 of efficientnet_lite0 has 40 filters (0-39)",
        ),
        ({"filters": "0-8"}, ["body", "filters"], "9 filters requested; at most 8 pictures per job"),
        ({"steps": 3001}, ["body", "steps"], "3001 steps requested; at most 3000"),
        ({"size": [64, 97]}, ["body", "size"], "size 64x97 is out of range: each side must be 16 to 96 pixels"),
        ({"method": "deepdream"}, ["body", "method"], "Input should be "),
        ({"colour": "blue"}, ["body", "colour"], "Extra inputs are not permitted"),
        ({"filters": "3-1"}, ["body", "filters"], "Value error, filter range '3-1' runs backwards"),
        ({"objective": "class", "layer": None, "filters": [999, 1000]}, ["body", "filters"], "class 1000 out of range"),
        (
            {"init": {"type": "image", "image_id": "ab" * 16}},
            ["body", "init", "image_id"],
            f"no uploaded image '{'ab' * 16}'; upload one with POST /v1/images",
        ),
    ],
)
def test_an_invalid_job_is_refused_before_it_is_queued(
    client: httpx.Client, changes: dict, loc: list, msg: str
) -> None:
    before = client.get("/v1/jobs", params={"limit": 1}).json()["jobs"]
    errors = field_errors(client.post("/v1/jobs", json={**SMALL_JOB, **changes}))

    assert len(errors) == 1
    assert errors[0][0] == loc and errors[0][1].startswith(msg)
    assert client.get("/v1/jobs", params={"limit": 1}).json()["jobs"] == before


def test_a_layer_alias_is_checked_like_its_name(client: httpx.Client) -> None:
    job = {"model": "vgg16", "layer": "features.0", "filters": [63], "steps": 1, "size": 32}  # block1_conv1

    assert client.post("/v1/jobs", json=job).status_code == 202
    errors = field_errors(client.post("/v1/jobs", json={**job, "filters": [64]}))
    assert errors == [
        (["body", "filters"], "filter 64 out of range: layer block1_conv1 of vgg16 has 64 filters (0-63)")
    ]


def test_a_body_that_is_not_json_is_a_422(client: httpx.Client) -> None:
    response = client.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert field_errors(response)[0][1].startswith("JSON decode error")


def test_unknown_jobs_are_404(client: httpx.Client) -> None:
    missing = "f" * 32
    for method, path in [
        ("GET", f"/v1/jobs/{missing}"),
        ("POST", f"/v1/jobs/{missing}/cancel"),
        ("GET", f"/v1/jobs/{missing}/grid.png"),
        ("GET", f"/v1/jobs/{missing}/filters/0.png"),
        ("GET", "/v1/jobs/..%2F..%2Fetc/grid.png"),
    ]:
        body = problem(client.request(method, path), 404)
        assert body["title"] == "Not Found"
    assert problem(client.get(f"/v1/jobs/{missing}"), 404)["detail"] == f"no job '{missing}'"


def test_listing_refuses_a_bad_cursor_or_limit(client: httpx.Client) -> None:
    errors = field_errors(client.get("/v1/jobs", params={"cursor": "bogus"}))
    assert errors == [(["query", "cursor"], "cursor 'bogus' is not one this service handed out")]

    errors = field_errors(client.get("/v1/jobs", params={"limit": 101, "status": "done"}))
    assert [loc for loc, _ in errors] == [["query", "limit"], ["query", "status"]]


def test_an_unknown_path_is_a_problem_too(client: httpx.Client) -> None:
    assert problem(client.get("/v2/jobs"), 404)["detail"] == "Not Found"
    assert problem(client.delete("/v1/jobs"), 405)["title"] == "Method Not Allowed"
