"""A deployment's own models over the real service: a worker started with FILTERVIZ_MODELS_FILE (the planted
good and bad entries, and no built-in), the catalog it publishes, the API's refusals, PNGs from both good ones."""

import io
import math
from pathlib import Path

import httpx
from PIL import Image

from tests.service_fixtures import OWN_MODELS, finished, submit, wait_for_job

REASONS = {
    "wrong_architecture": "are not a state dict of torchvision:resnet34 with 10 classes: missing layer1.2.conv1.weight",
    "truncated": "truncated.safetensors cannot be read: Error while deserializing header",
    "pickle_payload": "payload.pth are not a plain state dict: the pickle names io.open",
    "unknown_architecture": "torchvision 0.",
}


def test_the_catalog_shows_each_entry_and_why_a_bad_one_is_unavailable(
    own_api: httpx.Client, planted_models_file: Path
) -> None:
    models = {model["name"]: model for model in own_api.get("/v1/models").json()}

    assert list(models) == OWN_MODELS  # the file's models only: FILTERVIZ_MODELS names no built-in
    resnet, vit = models["my_resnet"], models["my_vit"]
    assert (resnet["architecture"], resnet["num_classes"], resnet["layers"]) == ("torchvision:resnet18", 10, 36)
    assert (vit["architecture"], vit["num_classes"], vit["layers"]) == ("timm:vit_tiny_patch16_224", 10, 25)
    for good in (resnet, vit):
        assert good["available"] and good["reason"] is None and good["weights_available"]
        assert good["weights_identity"].startswith(good["weights_file"] + ":")
    for name, reason in REASONS.items():
        assert not models[name]["available"] and reason in models[name]["reason"], models[name]
        assert models[name]["layers"] == 0 and f"model {name} is unavailable: " in own_api.worker_log()  # type: ignore[attr-defined]
    assert not (planted_models_file.parent / "payload-ran").exists()


def test_a_job_or_a_layer_list_for_an_unavailable_model_is_refused_with_the_reason(own_api: httpx.Client) -> None:
    for name, reason in REASONS.items():
        job = {"model": name, "layer": "conv1", "filters": [0], "steps": 1, "size": 64}
        answer = own_api.post("/v1/jobs", json=job)
        assert answer.status_code == 422, answer.text
        (error,) = answer.json()["errors"]
        assert error["loc"] == ["body", "model"] and error["type"] == "model_unavailable"
        assert error["msg"].startswith(f"model {name} is unavailable: ") and reason in error["msg"]
        layers = own_api.get(f"/v1/models/{name}/layers", params={"size": 64})
        assert layers.status_code == 422 and layers.json()["errors"][0]["loc"] == ["path", "name"]


def _png(client: httpx.Client, job: dict, n: int) -> Image.Image:
    answer = client.get(f"/v1/jobs/{job['id']}/filters/{n}.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(answer.content))


def test_the_resnet_with_ten_classes_renders_its_filters_and_classes(own_api: httpx.Client, tmp_path: Path) -> None:
    job = submit(own_api, {"model": "my_resnet", "layer": "res4", "filters": [0, 1], "steps": 4, "size": 64})
    classes = submit(own_api, {"model": "my_resnet", "objective": "class", "filters": [9], "steps": 2, "size": 48})
    beyond = own_api.post("/v1/jobs", json={"model": "my_resnet", "objective": "class", "filters": [10], "size": 64})
    job, classes = (wait_for_job(own_api, j["id"], finished, timeout=240) for j in (job, classes))

    assert job["status"] == "succeeded" and classes["status"] == "succeeded", (job, classes)
    assert job["request"]["layer"] == "res4" and [r["filter"] for r in job["results"]] == [0, 1]
    assert _png(own_api, job, 1).size == (64, 64) and _png(own_api, classes, 9).size == (48, 48)
    assert beyond.status_code == 422 and "my_resnet has 10 classes (0-9)" in beyond.json()["errors"][0]["msg"]
    (tmp_path / "my_resnet_grid.png").write_bytes(own_api.get(f"/v1/jobs/{job['id']}/grid.png").content)


def test_the_vit_renders_its_blocks_and_mlp_units_as_patch_grids(own_api: httpx.Client, tmp_path: Path) -> None:
    layers = own_api.get("/v1/models/my_vit/layers", params={"size": 96}).json()["layers"]
    shapes = {layer["name"]: (layer["output_shape"], layer["aliases"]) for layer in layers}
    assert shapes["blocks.5.mlp.act"] == ([768, 6, 6], ["block5_mlp"]) and shapes["blocks.11"] == (
        [192, 6, 6],
        ["block11"],
    )

    mlp = submit(own_api, {"model": "my_vit", "layer": "block5_mlp", "filters": [3, 700], "steps": 4, "size": 64})
    neuron = {"model": "my_vit", "layer": "blocks.11", "filters": [0], "objective": "neuron", "steps": 4, "size": 64}
    block = submit(own_api, neuron)
    mlp, block = (wait_for_job(own_api, j["id"], finished, timeout=240) for j in (mlp, block))

    assert mlp["status"] == "succeeded" and block["status"] == "succeeded", (mlp, block)
    assert [r["filter"] for r in mlp["results"]] == [3, 700]
    assert all(math.isfinite(r["activation"]) for r in mlp["results"]), mlp["results"]
    assert _png(own_api, mlp, 700).size == (64, 64) and _png(own_api, block, 0).mode == "RGB"
    (tmp_path / "my_vit_grid.png").write_bytes(own_api.get(f"/v1/jobs/{mlp['id']}/grid.png").content)
