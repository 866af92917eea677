"""A job of several layers (or "all-conv") is checked whole before anything is queued, each error naming
its layer, over HTTP on a scratch Redis with VGG16's catalog as a worker publishes it (no worker: jobs stay
queued)."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.catalog import ModelEntry, find_layer
from core.job_cost import LayerCost, job_work_flops, memory_bytes, pictures
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from tests.api_fixtures import AppClient
from worker.catalog import model_entries

VGG16_CONV = [f"block{b}_conv{c}" for b, convs in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for c in range(1, convs + 1)]
SEED_FIGURES = {"model": "vgg16", "layers": "all-conv", "filters": "0-19"}  # the seed's figure set
# The shipped limits (the scratch settings are the service tests' small ones).
SHIPPED = {name: Settings.model_fields[name].default for name in ("max_filters", "max_size", "max_steps")}


@pytest.fixture(scope="module")
def published() -> dict[str, ModelEntry]:
    """VGG16's and EfficientNet-Lite0's catalog entries as a worker publishes them: their layers and
    the layers' costs (no weights needed)."""
    return {entry.name: entry for entry in model_entries(Settings(models=["vgg16", "efficientnet_lite0"]))}


@pytest.fixture
def vgg16(published: dict[str, ModelEntry]) -> ModelEntry:
    return published["vgg16"]


@pytest.fixture
def api(app_client: AppClient, scratch: tuple[Settings, Stores], published: dict[str, ModelEntry]) -> AppClient:
    """``api(**settings changes)``: an app with the shipped limits and both models published (in place of
    app_client's small catalog)."""
    for entry in published.values():
        scratch[1].catalog.publish(entry)

    def make(**changes: object) -> TestClient:
        return app_client(**{**SHIPPED, **changes})

    return make


def queued(stores: Stores) -> list[str]:
    return [record.id for record in stores.jobs.page(100)[0]]


def errors(response: Any) -> list[tuple[list, str]]:
    """The field errors of a 422 (``response``: a TestClient's, an httpx.Response of its own httpx)."""
    assert response.status_code == 422, response.text
    return [(error["loc"], error["msg"]) for error in response.json()["errors"]]


def tflop(spec: RenderSpec, entry: ModelEntry) -> float:
    """The job's work as the API estimates it, from the catalog."""
    return job_work_flops(spec, costs(spec, entry)) / 1e12


def costs(spec: RenderSpec, entry: ModelEntry) -> list[LayerCost]:
    layers = [find_layer(entry.layers, part.layer or "") for part in spec.parts()]
    size = (entry.default_size, entry.default_size)
    return [LayerCost(layer.flops, layer.activations, size) for layer in layers if layer is not None]


def test_the_seeds_figure_set_is_one_job_of_260_pictures_in_13_layers(
    api: AppClient, scratch: tuple[Settings, Stores], vgg16: ModelEntry
) -> None:
    response = api().post("/v1/jobs", json=SEED_FIGURES)

    assert response.status_code == 202, response.text
    job = response.json()
    assert [part["layer"] for part in job["request"]["layers"]] == VGG16_CONV  # every conv layer, in order
    assert [layer.name for layer in vgg16.layers if layer.type == "Conv2d"] == VGG16_CONV
    assert all(part["filters"] == list(range(20)) for part in job["request"]["layers"])
    assert (job["request"]["layer"], job["request"]["filters"]) == (None, None)  # the layers carry them
    assert (job["status"], job["results"], job["grids"], job["grid_url"]) == ("queued", [], [], None)
    spec = RenderSpec.model_validate(job["request"])
    assert pictures(spec) == 260 and queued(scratch[1]) == [job["id"]]
    work = tflop(spec, vgg16)
    print(f"the seed's figure set: {pictures(spec)} pictures, about {work:.1f} TFLOP")
    assert 10 < work < Settings().max_job_tflop


def test_the_work_and_memory_caps_weigh_every_layer(api: AppClient, vgg16: ModelEntry) -> None:
    spec = RenderSpec.model_validate({**SEED_FIGURES, "layers": [{"layer": name} for name in VGG16_CONV]})
    deepest = {"model": "vgg16", "layer": "block5_conv3", "filters": "0-19"}
    cap = 0.9 * tflop(spec, vgg16)
    assert tflop(RenderSpec.model_validate(deepest), vgg16) < cap  # each layer alone is well within it

    tight = api(max_job_tflop=cap)
    assert tight.post("/v1/jobs", json=deepest).status_code == 202
    [(loc, msg)] = errors(tight.post("/v1/jobs", json=SEED_FIGURES))
    assert loc == ["body"] and msg.startswith(
        f"this job is about {tflop(spec, vgg16):,.1f} TFLOP of work (260 pictures"
    )
    assert "through 13 layers, the deepest block5_conv3, at 128x128" in msg

    animated = {"steps": 20, "snapshots": 1}  # 21 frames of each picture held: the results dominate
    whole = memory_bytes(spec.model_copy(update=animated), costs(spec, vgg16))
    one = memory_bytes(
        RenderSpec.model_validate({**deepest, **animated}), costs(RenderSpec.model_validate(deepest), vgg16)
    )
    budget_mb = (whole + one) // 2 // 2**20
    small = api(memory_budget_mb=budget_mb)
    assert small.post("/v1/jobs", json={**deepest, **animated}).status_code == 202
    [(loc, msg)] = errors(small.post("/v1/jobs", json={**SEED_FIGURES, **animated}))
    assert loc == ["body", "snapshots"] and f"at most {budget_mb} MB per job" in msg
    assert "260 pictures at 128x128, and the activations of 13 layers, the deepest block5_conv3," in msg


def test_a_bad_filter_in_the_fourth_layer_is_named_there_and_nothing_is_queued(
    api: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    client = api()
    layers = [{"layer": "block1_conv1"}, {"layer": "block2_conv1"}, {"layer": "features.10"}]
    body = {"model": "vgg16", "filters": "0-3", "layers": [*layers, {"layer": "block1_conv2", "filters": "60-65"}]}

    response = client.post("/v1/jobs", json=body)

    message = "filter 64, 65 out of range: layer block1_conv2 of vgg16 has 64 filters (0-63)"
    assert errors(response) == [(["body", "layers", 3, "filters"], message)]
    assert response.json()["errors"][0]["type"] == "filter_out_of_range"
    single = client.post("/v1/jobs", json={"model": "vgg16", "layer": "block1_conv2", "filters": "60-65"})
    assert errors(single) == [(["body", "filters"], message)]  # the same words as for a job of one layer
    assert queued(scratch[1]) == []


def test_each_error_names_its_layer(api: AppClient, scratch: tuple[Settings, Stores]) -> None:
    client = api()
    layers: list[dict[str, object]] = [
        {"layer": "block1_conv1"},
        {"layer": "block9_conv1"},
        {"layer": "block2_conv1", "filters": "0-x"},
        {"layer": "features.0"},  # block1_conv1 again, by its module path
    ]
    body = {"model": "vgg16", "filters": [0], "layers": layers}
    [(loc, msg)] = errors(client.post("/v1/jobs", json=body))  # the body's own syntax is checked first
    assert loc == ["body", "layers", 2, "filters"] and msg.startswith("Value error, cannot read '0-x' as a filter")

    layers[2] = {"layer": "block2_conv1"}
    found = errors(client.post("/v1/jobs", json=body))
    assert found[0][0] == ["body", "layers", 1, "layer"]
    assert found[0][1].startswith("unknown layer 'block9_conv1' of vgg16; valid layers: block1_conv1, ")
    assert found[1:] == [
        (["body", "layers", 3, "layer"], "layer block1_conv1 is named twice (also layers[0]); name each layer once")
    ]

    no_filters = {"model": "vgg16", "layers": [{"layer": "block1_conv1", "filters": [1]}, {"layer": "block1_conv2"}]}
    [(loc, msg)] = errors(client.post("/v1/jobs", json=no_filters))
    assert loc == ["body", "layers", 1, "filters"] and "(the request's or this layer's)" in msg
    both = {"model": "vgg16", "layer": "block1_conv1", "layers": "all-conv", "filters": [0]}
    assert errors(client.post("/v1/jobs", json=both)) == [(["body", "layer"], "name either layer or layers, not both")]
    classes = {"model": "vgg16", "objective": "class", "layers": "all-conv", "filters": [281]}
    assert errors(client.post("/v1/jobs", json=classes)) == [
        (["body", "layers"], "objective 'class' uses the model's output: leave out layers")
    ]
    [(loc, msg)] = errors(client.post("/v1/jobs", json={"model": "vgg16", "layers": "all-convs", "filters": [0]}))
    assert loc == ["body", "layers"] and "layers is a list of {layer, filters} or 'all-conv', not 'all-convs'" in msg
    assert queued(scratch[1]) == []


def test_the_layer_and_picture_limits_are_per_job_and_per_layer(api: AppClient) -> None:
    assert errors(api(max_layers=12).post("/v1/jobs", json=SEED_FIGURES)) == [
        (["body", "layers"], "13 layers requested; at most 12 per job (FILTERVIZ_MAX_LAYERS)")
    ]
    assert errors(api(max_pictures=259).post("/v1/jobs", json=SEED_FIGURES)) == [
        (["body", "layers"], "260 pictures requested; at most 259 per job (FILTERVIZ_MAX_PICTURES)")
    ]
    per_layer = errors(api(max_filters=19).post("/v1/jobs", json=SEED_FIGURES))
    assert per_layer == [
        (["body", "layers", index, "filters"], "20 filters requested; at most 19 pictures per layer")
        for index in range(13)
    ]


def test_all_conv_is_every_conv_layer_of_the_model_asked(api: AppClient, published: dict[str, ModelEntry]) -> None:
    body = {"model": "efficientnet_lite0", "layers": "all-conv", "filters": [0], "size": 64}
    response = api().post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    layers = [part["layer"] for part in response.json()["request"]["layers"]]
    assert len(layers) == 49 and layers[:3] == ["conv_stem", "blocks.0.0.conv_dw", "blocks.0.0.conv_pw"]
    assert layers == [layer.name for layer in published["efficientnet_lite0"].layers if layer.type == "Conv2d"]
    mixed = {**body, "layers": [{"layer": "blocks.2", "filters": [5]}, {"layer": "all-conv"}]}
    parts = api().post("/v1/jobs", json=mixed).json()["request"]["layers"]
    assert len(parts) == 50 and parts[0] == {"layer": "blocks.2", "filters": [5]} and parts[1]["filters"] == [0]


def test_objective_layer_dreams_each_conv_layer_whole(api: AppClient) -> None:
    response = api().post("/v1/jobs", json={"model": "vgg16", "objective": "layer", "layers": "all-conv"})
    assert response.status_code == 202, response.text
    assert [part["filters"] for part in response.json()["request"]["layers"]] == [[0]] * 13


def test_a_request_of_one_layer_reads_as_it_always_did(api: AppClient) -> None:
    response = api().post("/v1/jobs", json={"model": "vgg16", "layer": "block4_conv1", "filters": "0-2"})
    assert response.status_code == 202, response.text
    request = response.json()["request"]
    assert "layers" not in request and (request["layer"], request["filters"]) == ("block4_conv1", [0, 1, 2])
