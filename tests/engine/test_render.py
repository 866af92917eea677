import io

import numpy as np
import pytest
import torch
from PIL import Image

from core.engine import load_model, render
from core.engine.batch_plan import row_seed
from core.engine.codec import display_transform
from core.engine.parameterizations import row_start
from core.errors import FilterOutOfRange, SizeOutOfRange, UnknownLayer
from core.images import open_image
from core.spec import RenderSpec
from testkit.naive_seed import chollet_deprocess, naive_render

LITE0 = {"model": "efficientnet_lite0", "layer": "blocks.2", "size": 64, "steps": 8}


def pixels_of(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def start_pixels(spec: RenderSpec) -> torch.Tensor:
    """(B, 3, H, W) classic start pixels of a request from noise, one row per filter."""
    return torch.stack([row_start(spec, f, 0, None) for f in spec.filters])


def assert_same_picture(first, second) -> None:
    """Equal to within float rounding: a batch of another size may sum in another order, and the
    ascent carries a last-bit difference a few steps, so allow about one gray level on average."""
    assert np.abs(pixels_of(first.png) - pixels_of(second.png)).mean() < 1.5
    assert first.activation == pytest.approx(second.activation, rel=1e-2)


@pytest.fixture(scope="module")
def lite0_render():
    return render(RenderSpec(filters="0-7", **LITE0), device="cpu")


def test_one_png_per_filter_and_a_grid(lite0_render):
    assert [item.filter for item in lite0_render.pictures] == list(range(8))
    for item in lite0_render.pictures:
        image = Image.open(io.BytesIO(item.png))
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (64, 64))
    grid = Image.open(io.BytesIO(lite0_render.grid_png))
    assert grid.size == (3 * 68 + 4, 3 * 80 + 4)  # 3x3 tiles of 64 px, 4 px margins, 12 px labels


def test_classic_raises_every_filter_well_above_the_noise(lite0_render):
    for item in lite0_render.pictures:
        assert item.activation > item.start_activation + 1.0, item


def test_the_same_request_gives_byte_identical_pngs(lite0_render):
    again = render(RenderSpec(filters="0-7", **LITE0), device="cpu")
    assert [item.png for item in again.pictures] == [item.png for item in lite0_render.pictures]
    assert again.grid_png == lite0_render.grid_png


def test_another_seed_gives_another_picture(lite0_render):
    other = render(RenderSpec(filters="3", seed=1, **LITE0), device="cpu")
    assert other.pictures[0].png != lite0_render.pictures[3].png


def test_a_filter_does_not_depend_on_its_batch_mates(lite0_render):
    for filter_index in (1, 5):
        alone = render(RenderSpec(filters=filter_index, **LITE0), device="cpu").pictures[0]
        assert_same_picture(alone, lite0_render.pictures[filter_index])


def test_chunks_within_a_small_memory_budget_change_nothing(lite0_render):
    chunked = render(RenderSpec(filters="0-7", **LITE0), device="cpu", memory_budget_mb=1)
    for item, reference in zip(chunked.pictures, lite0_render.pictures, strict=True):
        assert_same_picture(item, reference)


def test_classic_is_the_seeds_algorithm(vgg16_home):
    """The batched, early-stopping engine draws what a plain one-filter Keras-style loop draws."""
    spec = RenderSpec(model="vgg16", layer="block2_conv1", filters="4", size=48, steps=5)
    ours = pixels_of(render(spec, device="cpu").pictures[0].png)
    model = load_model("vgg16")
    theirs = naive_render(model, model[1].features[6], 4, start_pixels(spec)[0], spec.steps, spec.step_size)
    assert np.abs(ours - theirs.astype(np.int16)).mean() < 0.5


def test_noise_is_the_seeds_and_seeded_per_filter():
    spec = RenderSpec(layer="block1_conv1", filters="0,1", size=128, seed=7)
    pixels = start_pixels(spec)
    assert pixels.shape == (2, 3, 128, 128)
    assert pixels.mean().item() == pytest.approx(127, abs=0.2)
    assert pixels.std().item() == pytest.approx(10, abs=0.2)
    alone = start_pixels(RenderSpec(layer="block1_conv1", filters="1", size=128, seed=7))
    assert torch.equal(alone[0], pixels[1])
    assert row_seed(7, 0) != row_seed(7, 1) != row_seed(8, 1)


def test_display_transform_is_chollets_deprocess():
    pixels = torch.randn(2, 3, 8, 8) * 30 + 100
    ours = display_transform(pixels)
    for row in range(2):
        expected = chollet_deprocess(pixels[row].permute(1, 2, 0).numpy().astype(np.float64))
        assert np.abs(ours[row].numpy().astype(int) - expected.astype(int)).max() <= 1


def test_a_start_image_is_nudged_towards_the_filter(cat_jpeg):
    spec = RenderSpec(filters="0-1", init={"type": "image", "image_id": "0" * 32}, **LITE0)
    result = render(spec, init_image=open_image(cat_jpeg, 10**8), device="cpu")
    cat = pixels_of(result.pictures[0].png)
    assert cat.shape == (64, 64, 3)
    for item in result.pictures:
        assert item.activation > item.start_activation


def test_progress_is_reported_every_step_and_can_abort():
    seen: list[tuple[int, int]] = []
    render(RenderSpec(filters="0-1", **LITE0), device="cpu", on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(step, 8) for step in range(1, 9)]

    class Stop(Exception):
        pass

    def stop_at_three(done: int, total: int) -> None:
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        render(RenderSpec(filters="0", **LITE0), device="cpu", on_progress=stop_at_three)


def test_bad_requests_name_what_is_valid():
    with pytest.raises(
        FilterOutOfRange, match=r"layer blocks.2 of efficientnet_lite0 has 40 filters \(0-39\); out of range: 40, 99"
    ):
        render(RenderSpec(filters="38-40,99", **LITE0), device="cpu")
    with pytest.raises(UnknownLayer, match="valid layers: conv_stem, bn1, "):
        render(RenderSpec(model="efficientnet_lite0", layer="blocks.9", filters="0"), device="cpu")
    with pytest.raises(SizeOutOfRange, match="at 16x16 pixels layer block5_pool of vgg16 has no pixels left"):
        render(RenderSpec(layer="block5_pool", filters="0", size=16), device="cpu")


def test_snapshots_make_an_animation_per_filter_ending_on_its_png():
    result = render(RenderSpec(filters="0-2", snapshots=3, **LITE0), device="cpu")  # 8 steps: frames at 3, 6, 8
    for item in result.pictures:
        animation = Image.open(io.BytesIO(item.webp))
        assert (animation.format, animation.n_frames, animation.size) == ("WEBP", 3, (64, 64))
        animation.seek(2)
        assert np.array_equal(np.asarray(animation.convert("RGB"), dtype=np.int16), pixels_of(item.png))
