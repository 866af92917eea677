"""Image sets through the API (in process, scratch Redis): uploads checked whole, tenant scope, DELETE,
retention; examples requests checked."""

import io

from fastapi.testclient import TestClient
from PIL import Image

from core.catalog import LayerEntry
from core.demo_images import DEMO_DATASET
from core.image_sets import NORMALIZED_SIDE, SetImage, normalized_png
from core.settings import Settings
from core.store import Stores
from core.store.datasets import FOLDER
from tests.api_fixtures import ALICE, BLOCK, BOB, CATALOG, KEY_DIGESTS, AppClient, bearer
from tests.core.test_image_sets import png, zipped


def stored_objects(stores: Stores) -> list[str]:
    return [stored.name for stored in stores.datasets.objects.list(f"{FOLDER}/")]


def small_demo(stores: Stores) -> None:
    """A demo set of three pictures in place of scikit-image's 196, so listing does not make the real one."""
    pictures = [Image.new("RGB", (48, 40), color) for color in ((200, 30, 30), (30, 200, 30), (30, 30, 200))]
    stores.datasets.demo(lambda: [SetImage(f"p{n}", *normalized_png(p)) for n, p in enumerate(pictures)])


def upload(client, files: list[tuple[str, bytes]], **headers: str):
    return client.post(
        "/v1/datasets", files=[("files", file) for file in files], data={"name": "mine"}, headers=headers
    )


def test_an_upload_of_files_and_archives_is_one_set_stored_normalized(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    _, stores = scratch
    client = app_client()
    big = io.BytesIO()
    Image.new("RGB", (600, 400), (10, 90, 200)).save(big, format="JPEG")
    response = upload(
        client, [("a.png", png(seed=1)), ("big.jpg", big.getvalue()), ("s.zip", zipped({"c.png": png(seed=2)}))]
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["images"], body["image_names"]) == ("mine", 3, ["a.png", "big.jpg", "s.zip:c.png"])
    image = client.get(body["image_url"].replace("{n}", "1"))
    assert image.status_code == 200 and image.headers["cache-control"].endswith("immutable")
    assert Image.open(io.BytesIO(image.content)).size == (NORMALIZED_SIDE * 3 // 2, NORMALIZED_SIDE)
    again = client.get(body["image_url"].replace("{n}", "1"), headers={"If-None-Match": image.headers["etag"]})
    assert again.status_code == 304
    assert len(stored_objects(stores)) == 3


def test_a_bad_file_is_a_422_naming_it_and_nothing_is_stored(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    _, stores = scratch
    client = app_client()
    archive = zipped({"ok.png": png(), "../up.png": png()})
    for files, named in (
        ([("a.png", png()), ("b.png", png()[:120])], "b.png: the image is truncated or corrupt"),
        ([("set.zip", archive)], "set.zip:../up.png: a path outside"),
        (
            [("bomb.zip", zipped({"x.png": b"\0" * 200_000}))],
            "bomb.zip:x.png: 200000 bytes; one image may have at most",
        ),
    ):
        response = upload(client, files)
        assert response.status_code == 422, response.text
        (error,) = response.json()["errors"]
        assert (error["loc"], error["type"]) == (["body", "files"], "invalid_image_set")
        assert error["msg"].startswith(named), error["msg"]
    assert stored_objects(stores) == []
    assert stores.datasets.owned(None) == []


def test_limits_on_images_and_bytes_come_from_the_settings(app_client: AppClient) -> None:
    client = app_client(max_dataset_images=2, max_dataset_bytes=50_000)
    assert "more than 2 images" in upload(client, [(f"{n}.png", png(seed=n)) for n in range(3)]).json()["detail"]
    too_big = upload(client, [("a.png", b"\0" * 120_000)])
    assert too_big.status_code == 413 and "the image set is larger than" in too_big.json()["detail"]


def test_a_set_is_its_keys_alone_and_delete_removes_everything(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    _, stores = scratch
    small_demo(stores)
    client = app_client(api_keys=KEY_DIGESTS)
    created = upload(client, [("a.png", png())], **bearer(ALICE)).json()
    url = created["url"]
    assert client.get(url, headers=bearer(BOB)).status_code == 404
    assert client.get(f"{url}/images/0.png", headers=bearer(BOB)).status_code == 404
    assert client.delete(url, headers=bearer(BOB)).status_code == 404
    listed = {
        key: [d["id"] for d in client.get("/v1/datasets", headers=bearer(key)).json()["datasets"]]
        for key in (ALICE, BOB)
    }
    assert listed == {ALICE: [DEMO_DATASET, created["id"]], BOB: [DEMO_DATASET]}
    assert client.delete(f"/v1/datasets/{DEMO_DATASET}", headers=bearer(ALICE)).status_code == 403
    assert client.delete(url, headers=bearer(ALICE)).status_code == 204
    assert client.get(url, headers=bearer(ALICE)).status_code == 404
    assert [name for name in stored_objects(stores) if f"/{created['id']}/" in name] == []


def test_retention_expires_the_record_and_the_sweep_deletes_the_images(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    settings, stores = scratch
    created = upload(app_client(), [("a.png", png())]).json()
    ttl = stores.datasets._redis.ttl(f"filterviz:dataset:{created['id']}")
    assert 0 < ttl <= settings.upload_retention_seconds
    assert stores.datasets.sweep(0) == 0  # recorded: kept
    stores.datasets._redis.delete(f"filterviz:dataset:{created['id']}")  # as if it expired
    assert stores.datasets.sweep(3600) == 0  # just written: perhaps an upload still going
    assert stores.datasets.sweep(0) == 1 and stored_objects(stores) == []


EARLY = LayerEntry(
    **{**BLOCK.model_dump(), "name": "blocks.0", "aliases": [], "module_path": "blocks.0", "filters": 16}
)


def examples_app(app_client: AppClient, stores: Stores, weights: str) -> TestClient:
    """An app whose catalog has efficientnet_lite0's blocks.0 with ``weights``, and a small demo set."""
    small_demo(stores)
    stores.catalog.publish(CATALOG.model_copy(update={"weights_identity": weights, "layers": [EARLY]}))
    return app_client(examples_size=64, examples_top_k=2)


def test_examples_requests_are_checked(app_client: AppClient, scratch: tuple[Settings, Stores]) -> None:
    examples_client = examples_app(app_client, scratch[1], "w.pth:1:1")
    base = "/v1/models/efficientnet_lite0/layers"
    for url, loc, text in (
        (f"{base}/blocks.9/examples", ["path", "layer"], "has no layer"),
        (f"{base}/blocks.0/examples?filters=16", ["query", "filters"], "16 filters (0-15); out of range: [16]"),
        (f"{base}/blocks.0/examples?filters=x", ["query", "filters"], ""),
    ):
        response = examples_client.get(url)
        assert response.status_code == 422, response.text
        (error,) = response.json()["errors"]
        assert error["loc"] == loc and text in error["msg"]
    missing = examples_client.get(f"{base}/blocks.0/examples?dataset=0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404
    quiet = examples_client.get(f"{base}/blocks.0/examples?build=false")  # what the gallery asks first
    assert quiet.status_code == 404 and "no examples index" in quiet.json()["detail"]
    assert examples_client.get(f"{base}/blocks.0/examples").status_code == 202
    assert examples_client.get(f"{base}/blocks.0/examples?build=false").status_code == 202  # the build goes on
