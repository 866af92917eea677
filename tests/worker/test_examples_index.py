"""An examples index built by the task body from the state the API queued: one build for all askers, the
index served for any filters afterwards with no second model pass (forwards counted)."""

import io

from PIL import Image

from core.engine import load_model, weights_identity
from core.settings import Settings
from core.store import Stores
from tests.api.test_datasets import examples_app
from tests.api_fixtures import AppClient
from worker.examples import build_examples


def test_examples_come_from_one_build_and_other_filters_cost_no_model_pass(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    settings, stores = scratch
    examples_client = examples_app(app_client, stores, weights_identity("efficientnet_lite0"))
    asked = examples_client.get("/v1/models/efficientnet_lite0/layers/blocks.0/examples?dataset=demo&filters=0-3")
    assert asked.status_code == 202, asked.text
    build = asked.json()
    assert asked.headers["location"] == build["url"] and build["status"] == "queued" and build["images"] == 3
    again = examples_client.get("/v1/models/efficientnet_lite0/layers/blocks.0/examples?dataset=demo&filters=4-5")
    assert again.status_code == 202 and again.json()["key"] == build["key"]  # the same build, not another

    model = load_model("efficientnet_lite0", settings.weights_dir)
    forwards: list[int] = []
    hook = model.register_forward_pre_hook(lambda *_: forwards.append(1))
    try:
        build_examples(build["key"], stores, settings.model_copy(update={"examples_batch_size": 2}), "cpu")
        assert len(forwards) >= 2  # two batches of the three images (and the receptive field's probes)
        state = examples_client.get(build["url"]).json()
        assert (state["status"], state["done"]) == ("succeeded", 3)
        served = examples_client.get("/v1/models/efficientnet_lite0/layers/blocks.0/examples?dataset=demo&filters=0-3")
        assert served.status_code == 200, served.text
        before = len(forwards)
        other = examples_client.get("/v1/models/efficientnet_lite0/layers/blocks.0/examples?dataset=demo&filters=9,15")
        build_examples(build["key"], stores, settings, "cpu")  # a redelivered task: finds the index, runs nothing
        assert len(forwards) == before
    finally:
        hook.remove()
    assert other.status_code == 200 and [f["filter"] for f in other.json()["filters"]] == [9, 15]
    body = served.json()
    assert (body["k"], body["side"], body["ranking"]) == (2, 64, "max")
    for entry in body["filters"]:
        assert len(entry["examples"]) == 2
        first, second = entry["examples"]
        assert first["activation"] >= second["activation"]
        assert first["image"] in ("p0", "p1", "p2")
        crop = examples_client.get(first["crop_url"])
        assert crop.status_code == 200 and crop.headers["cache-control"].endswith("immutable")
        left, top, right, bottom = first["box"]
        assert Image.open(io.BytesIO(crop.content)).size == (right - left, bottom - top)
        assert (
            examples_client.get(first["crop_url"], headers={"If-None-Match": crop.headers["etag"]}).status_code == 304
        )
        assert Image.open(io.BytesIO(examples_client.get(first["thumbnail_url"]).content)).size == (128, 128)
