"""Stable picture URLs, in process (no worker: jobs stay queued): validation, the one job per missing
picture, and cached pictures served as immutable PNGs."""

from core.cache_key import picture_keys
from core.catalog import ModelEntry
from core.pictures import Picture
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from tests.api_fixtures import CATALOG, AppClient, small_png

IDENTITY = "w.pth:1234:5678"
URL = "/v1/pictures/efficientnet_lite0/blocks.2/5.png?steps=3&size=32"
SPEC = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters=[5], steps=3, size=32)


def publish_weights(stores: Stores, identity: str | None = IDENTITY) -> None:
    stores.catalog.publish(ModelEntry.model_validate({**CATALOG.model_dump(), "weights_identity": identity}))


def test_a_missing_picture_answers_202_with_one_job_for_every_ask(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    client = app_client()
    publish_weights(scratch[1])
    first, again = client.get(URL), client.get(URL)
    assert first.status_code == again.status_code == 202, first.text
    job = first.json()
    assert first.headers["location"] == f"/v1/jobs/{job['id']}" and again.json()["id"] == job["id"]
    assert job["status"] == "queued" and job["request"]["filters"] == [5] and job["request"]["steps"] == 3


def test_an_ended_job_lets_the_next_ask_queue_another(app_client: AppClient, scratch: tuple[Settings, Stores]) -> None:
    client = app_client()
    publish_weights(scratch[1])
    first = client.get(URL).json()["id"]
    assert client.post(f"/v1/jobs/{first}/cancel").status_code == 200
    second = client.get(URL)
    assert second.status_code == 202 and second.json()["id"] != first


def test_a_cached_picture_is_served_immutable_with_etag(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    client = app_client()
    stores = scratch[1]
    publish_weights(stores)
    png = small_png()
    key = picture_keys(SPEC, "blocks.2", IDENTITY)[(5, 0)]
    stores.cache.put(key, Picture(filter=5, activation=1.0, start_activation=0.1, png=png), None)
    # the same picture named with its defaults spelled out, and its layer by an alias
    for url in (URL, "/v1/pictures/efficientnet_lite0/blocks.2.0/5.png?steps=3&size=32x32&seed=0&method=classic"):
        response = client.get(url)
        assert response.status_code == 200 and response.content == png, response.text
        assert response.headers["content-type"] == "image/png" and "immutable" in response.headers["cache-control"]
    etag = response.headers["etag"]
    assert client.get(URL, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(URL + "&seed=1", headers={"If-None-Match": etag}).status_code == 202


def test_bad_settings_are_refused_as_post_refuses_them(app_client: AppClient, scratch: tuple[Settings, Stores]) -> None:
    client = app_client()
    publish_weights(scratch[1])
    body = {"model": "efficientnet_lite0", "layer": "blocks.2", "size": 32}
    cases = [  # (URL, the same request's body for POST /v1/jobs, where the URL's error is)
        ("blocks.2/40.png?size=32", {**body, "filters": [40]}, ["path", "filter"]),
        ("nope/0.png?size=32", {**body, "layer": "nope", "filters": [0]}, ["path", "layer"]),
        ("blocks.2/0.png?size=32&steps=100000", {**body, "filters": [0], "steps": 100000}, ["query", "steps"]),
        ("blocks.2/0.png?size=4", {**body, "filters": [0], "size": 4}, ["query", "size"]),
        ("blocks.2/0.png?size=32&step_size=0", {**body, "filters": [0], "step_size": 0}, ["query", "step_size"]),
    ]
    for url, post, loc in cases:
        got = client.get(f"/v1/pictures/efficientnet_lite0/{url}")
        posted = client.post("/v1/jobs", json=post)
        assert got.status_code == posted.status_code == 422, (url, got.text)
        assert got.headers["content-type"] == "application/problem+json"
        error, post_error = got.json()["errors"][0], posted.json()["errors"][0]
        assert error["loc"] == loc and error["msg"] == post_error["msg"], (url, error, post_error)
    variant = client.get("/v1/pictures/efficientnet_lite0/blocks.2/0.png?size=32&diversity=2&variant=2")
    assert variant.status_code == 422 and variant.json()["errors"][0]["loc"] == ["query", "variant"]
    for query in ("objective=layer", "size=big"):
        assert client.get(f"/v1/pictures/efficientnet_lite0/blocks.2/0.png?{query}").status_code == 422


def test_a_model_without_weights_is_503(app_client: AppClient, scratch: tuple[Settings, Stores]) -> None:
    client = app_client()
    publish_weights(scratch[1], None)
    response = client.get(URL)
    assert response.status_code == 503 and "no weights for efficientnet_lite0" in response.json()["detail"]
