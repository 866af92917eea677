"""The robust method, the objectives beyond a filter's mean, diversity, dead filters, snapshots."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from core.engine import load_model, render, resolve_layer
from core.spec import RenderSpec
from testkit.planted_weights import plant_vgg16_weights
from testkit.scoring import decode, score

LITE0 = {"model": "efficientnet_lite0", "layer": "blocks.2", "size": 64, "method": "robust", "steps": 24}


def pixels_of(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def robust_render():
    return render(RenderSpec(filters="0-5", **LITE0), device="cpu")


def test_robust_raises_every_filter(robust_render):
    for item in robust_render.pictures:
        assert item.activation > item.start_activation + 1.0, item
        assert not item.dead


def test_robust_is_reproducible_for_a_seed_and_free_of_batch_mates(robust_render):
    again = render(RenderSpec(filters="0-5", **LITE0), device="cpu")
    assert [item.png for item in again.pictures] == [item.png for item in robust_render.pictures]
    alone = render(RenderSpec(filters="4", **LITE0), device="cpu").pictures[0]
    assert np.abs(pixels_of(alone.png) - pixels_of(robust_render.pictures[4].png)).mean() < 1.5
    other_seed = render(RenderSpec(filters="4", seed=3, **LITE0), device="cpu").pictures[0]
    assert other_seed.png != alone.png


def test_robust_pictures_survive_being_moved_better_than_classic_ones():
    spec = {"model": "efficientnet_lite0", "layer": "blocks.3", "filters": [0, 1, 2, 3], "size": 96, "steps": 32}
    layer = resolve_layer("efficientnet_lite0", "blocks.3", 96)
    model = load_model("efficientnet_lite0")
    classic = score(model, layer, spec["filters"], decode(render(RenderSpec(**spec), device="cpu").pictures))
    robust = score(
        model, layer, spec["filters"], decode(render(RenderSpec(method="robust", **spec), device="cpu").pictures)
    )
    assert robust[1] > 1.5 * classic[1]  # transformed activation: structure, not adversarial noise


@pytest.mark.parametrize("method", ["classic", "robust"])
@pytest.mark.parametrize(
    "objective, fields",
    [
        ("neuron", {"layer": "blocks.3", "filters": "0-1"}),
        ("layer", {"layer": "blocks.3"}),
        ("class", {"filters": "281"}),
    ],
)
def test_each_objective_raises_its_target(method, objective, fields):
    spec = RenderSpec(model="efficientnet_lite0", size=64, steps=16, method=method, objective=objective, **fields)
    result = render(spec, device="cpu")
    for item in result.pictures:
        assert item.activation > item.start_activation, item


def test_deepdream_on_the_cat(cat_jpeg):
    from core.images import open_image

    spec = RenderSpec(
        model="efficientnet_lite0",
        layer="blocks.3",
        objective="layer",
        size=96,
        steps=12,
        method="robust",
        init={"type": "image", "image_id": "0" * 32},
    )
    result = render(spec, init_image=open_image(cat_jpeg, 10**8), device="cpu")
    assert [(item.filter, item.variant) for item in result.pictures] == [(0, 0)]
    assert result.pictures[0].activation > result.pictures[0].start_activation


@pytest.mark.parametrize("method", ["classic", "robust"])
def test_strength_controls_how_far_a_photo_moves(cat_jpeg, method):
    from core.engine.codec import image_to_pixels
    from core.images import open_image

    cat = open_image(cat_jpeg, 10**8)
    original = image_to_pixels(cat, (64, 64)).permute(1, 2, 0).numpy()

    def moved(strength: float) -> float:
        init = {"type": "image", "image_id": "0" * 32, "strength": strength}
        spec = RenderSpec(filters="2", init=init, **{**LITE0, "method": method, "steps": 10})
        return np.abs(pixels_of(render(spec, init_image=cat, device="cpu").pictures[0].png) - original).mean()

    assert moved(0.2) < moved(1.0)


def test_diversity_makes_different_pictures_of_one_filter():
    result = render(RenderSpec(filters="1", diversity=3, **LITE0), device="cpu")
    assert [(item.filter, item.variant) for item in result.pictures] == [(1, 0), (1, 1), (1, 2)]
    pictures = [pixels_of(item.png) for item in result.pictures]
    for i in range(3):
        assert result.pictures[i].activation > result.pictures[i].start_activation
        for j in range(i):
            assert np.abs(pictures[i] - pictures[j]).mean() > 10


def test_snapshots_make_an_animation():
    result = render(RenderSpec(filters="0", snapshots=6, **LITE0), device="cpu")
    animation = Image.open(io.BytesIO(result.pictures[0].webp))
    assert (animation.format, animation.n_frames, animation.size) == ("WEBP", 4, (64, 64))
    assert result.pictures[0].animation
    still = render(RenderSpec(filters="0", **LITE0), device="cpu").pictures[0]
    assert still.webp is None and not still.animation


@pytest.fixture
def vgg16_with_a_dead_filter(tmp_path, monkeypatch):
    """Planted VGG16 weights in which block1_conv1 filter 3 can never fire."""
    state = plant_vgg16_weights(tmp_path)
    state["features.0.bias"][3] = -1e4
    torch.save(state, tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))


@pytest.mark.parametrize("method", ["classic", "robust"])
def test_dead_filters_are_reported_not_drawn_as_gray(vgg16_with_a_dead_filter, method):
    spec = RenderSpec(layer="block1_conv1", filters="2-4", size=32, steps=6, method=method)
    result = render(spec, device="cpu")
    assert [item.dead for item in result.pictures] == [False, True, False]
    assert pixels_of(result.pictures[1].png).std() > 1  # never a flat gray square
