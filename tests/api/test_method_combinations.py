"""Combinations of method, start image and transparency that mean nothing are 422s naming the field."""

import pytest

from tests.api_fixtures import AppClient

SMALL = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": [0], "steps": 3, "size": 32}


def errors_of(response) -> list[tuple[list, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [(error["loc"], error["msg"]) for error in response.json()["errors"]]


def test_accentuate_without_a_start_image_names_init_and_the_method(app_client: AppClient) -> None:
    response = app_client().post("/v1/jobs", json={**SMALL, "method": "accentuate"})
    ((loc, msg),) = errors_of(response)
    assert loc == ["body", "init"]
    assert "method 'accentuate'" in msg and '"type": "image"' in msg


@pytest.mark.parametrize("method", ["classic", None])
def test_a_transparency_map_of_classic_is_refused(app_client: AppClient, method: str | None) -> None:
    body = {**SMALL, "transparency": True, **({"method": method} if method else {})}
    ((loc, msg),) = errors_of(app_client().post("/v1/jobs", json=body))
    assert loc == ["body", "transparency"]
    assert msg.endswith("method 'classic' has none") and "robust, maco, accentuate" in msg


def test_the_stable_picture_url_refuses_classic_transparency_in_its_query(app_client: AppClient) -> None:
    response = app_client().get("/v1/pictures/efficientnet_lite0/blocks.2/0.png", params={"transparency": "true"})
    ((loc, _),) = errors_of(response)
    assert loc == ["query", "transparency"]


@pytest.mark.parametrize("method", ["robust", "maco"])
def test_the_robust_family_takes_transparency(app_client: AppClient, method: str) -> None:
    response = app_client().post("/v1/jobs", json={**SMALL, "method": method, "transparency": True})
    assert response.status_code == 202, response.text
    assert response.json()["request"]["transparency"] is True
