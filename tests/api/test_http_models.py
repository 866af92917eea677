"""The model catalog over HTTP: what the workers published, and layers at other sizes on request."""

import httpx

from core.store import Stores
from testkit.services import wait_until

SEED_TABLE = [
    "block1_conv1",
    "block1_conv2",
    "block1_pool",
    "block2_conv1",
    "block2_conv2",
    "block2_pool",
    "block3_conv1",
    "block3_conv2",
    "block3_conv3",
    "block3_pool",
    "block4_conv1",
    "block4_conv2",
    "block4_conv3",
    "block4_pool",
    "block5_conv1",
    "block5_conv2",
    "block5_conv3",
    "block5_pool",
]


def test_models_say_whether_the_workers_have_their_weights(client: httpx.Client) -> None:
    models = {model["name"]: model for model in client.get("/v1/models").json()}

    assert list(models) == ["efficientnet_lite0", "vgg16"]
    assert models["efficientnet_lite0"]["weights_available"] is True
    assert models["vgg16"]["weights_available"] is False
    assert models["vgg16"]["weights_file"] == "vgg16-397923af.pth" and models["vgg16"]["layers"] == 18
    assert models["vgg16"]["layers_url"] == "/v1/models/vgg16/layers" and models["vgg16"]["num_classes"] == 1000


def test_vgg16_layers_match_the_seed_table(client: httpx.Client) -> None:
    catalog = client.get("/v1/models/vgg16/layers").json()

    assert catalog["size"] == [224, 224]
    assert [layer["name"] for layer in catalog["layers"]] == SEED_TABLE
    conv = catalog["layers"][10]
    assert (conv["name"], conv["output_shape"], conv["filters"]) == ("block4_conv1", [512, 28, 28], 512)
    assert conv["aliases"] == ["features.17"] and conv["params"] == 1_180_160


def test_common_sizes_are_published_up_front(client: httpx.Client, stores: Stores) -> None:
    """Right after every model's entry (which makes the API ready), without anyone asking for them."""
    published = wait_until(lambda: stores.catalog.layers("vgg16", (64, 64)), 60, "the common sizes")
    catalog = client.get("/v1/models/vgg16/layers", params={"size": 64}).json()
    shapes = {layer["name"]: layer["output_shape"] for layer in catalog["layers"]}
    assert shapes["block1_conv1"] == [64, 64, 64] and shapes["block5_pool"] == [512, 2, 2]
    assert [layer.model_dump(mode="json") for layer in published.layers] == catalog["layers"]


def test_layers_at_another_size_come_from_a_worker_and_are_cached(client: httpx.Client, stores: Stores) -> None:
    assert stores.catalog.layers("vgg16", (80, 80)) is None
    catalog = client.get("/v1/models/vgg16/layers", params={"size": 80}).json()

    assert catalog["size"] == [80, 80]
    shapes = {layer["name"]: layer["output_shape"] for layer in catalog["layers"]}
    assert shapes["block1_conv1"] == [64, 80, 80] and shapes["block5_pool"] == [512, 2, 2]
    assert [layer.model_dump(mode="json") for layer in stores.catalog.layers("vgg16", (80, 80)).layers] == catalog[
        "layers"
    ]


def test_unknown_models_and_sizes_are_refused(client: httpx.Client) -> None:
    missing = client.get("/v1/models/resnet9000/layers")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "unknown model 'resnet9000'; available: efficientnet_lite0, vgg16"

    too_big = client.get("/v1/models/vgg16/layers", params={"size": 97})
    assert too_big.status_code == 422
    assert too_big.json()["errors"] == [
        {
            "loc": ["query", "size"],
            "msg": "size 97x97 is out of range: each side must be 16 to 96 pixels",
            "type": "size_out_of_range",
        }
    ]


def test_ready_when_a_worker_is_alive(client: httpx.Client) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "workers": ["w1@test"]}
    assert client.get("/healthz").json() == {"status": "ok"}
