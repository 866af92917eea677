"""GET /v1/jobs: pages by status, and cursors that were never handed out."""

import base64

import pytest

from tests.api_fixtures import AppClient

JOB = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "0-1", "steps": 3, "size": 32}


@pytest.mark.parametrize("score", ["nan", "inf", "-inf", "1e400", "9" * 400])
def test_a_forged_cursor_is_a_422_naming_the_cursor(app_client: AppClient, score: str) -> None:
    cursor = base64.urlsafe_b64encode(f"{score}:{'0' * 32}".encode()).decode()
    response = app_client().get("/v1/jobs", params={"cursor": cursor, "status": "queued"})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
    assert "is not one this service handed out" in response.json()["errors"][0]["msg"]


def test_pages_of_one_status_follow_their_cursors(app_client: AppClient) -> None:
    client = app_client()
    ids = [client.post("/v1/jobs", json={**JOB, "seed": seed}).json()["id"] for seed in range(5)]
    client.post(f"/v1/jobs/{ids[2]}/cancel")

    seen, cursor = [], None
    for _ in range(5):
        page = client.get("/v1/jobs", params={"status": "queued", "limit": 2, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200
        seen += [job["id"] for job in page.json()["jobs"]]
        if (cursor := page.json()["next_cursor"]) is None:
            break
    assert seen == [ids[4], ids[3], ids[1], ids[0]]
    canceled = client.get("/v1/jobs", params={"status": "canceled"}).json()["jobs"]
    assert [job["id"] for job in canceled] == [ids[2]]
