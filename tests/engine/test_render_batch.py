"""Several requests in one batch: each row on its own layer, seed and filter, stoppable per request."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from core.engine import RenderRequest, load_model, render, render_batch, resolve_layer
from core.engine import batch_plan as engine_rows
from core.engine.batch_plan import Row, plan_chunks
from core.engine.features import FeatureExtractor, select_channels
from core.engine.layers import LayerInfo
from core.engine.objectives import Activations, channel
from core.spec import RenderSpec

BASE = {"model": "efficientnet_lite0", "size": 32, "steps": 5}


def pixels_of(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def assert_same_pictures(batched, alone) -> None:
    """Equal to within float rounding (a batch of another size may sum in another order)."""
    assert [(f.filter, f.variant) for f in batched.pictures] == [(f.filter, f.variant) for f in alone.pictures]
    for ours, theirs in zip(batched.pictures, alone.pictures, strict=True):
        assert np.abs(pixels_of(ours.png) - pixels_of(theirs.png)).mean() < 1.5
        assert ours.activation == pytest.approx(theirs.activation, rel=1e-2, abs=1e-3)


def specs(method: str) -> list[RenderSpec]:
    return [
        RenderSpec(layer="blocks.1", filters="0-1", seed=1, method=method, **BASE),
        RenderSpec(layer="blocks.2", filters="5", seed=2, method=method, **BASE),
        RenderSpec(layer="blocks.1", filters="3", seed=3, method=method, **BASE),
    ]


@pytest.mark.parametrize("method", ["classic", "robust"])
def test_one_forward_to_the_deepest_layer_draws_what_each_request_draws_alone(method, monkeypatch) -> None:
    monkeypatch.setattr(engine_rows, "MIX_WASTE", float("inf"))  # every row in one chunk, two layers
    batch = dict(render_batch([RenderRequest(spec) for spec in specs(method)], device="cpu"))
    assert sorted(batch) == [0, 1, 2]
    for index, spec in enumerate(specs(method)):
        assert_same_pictures(batch[index], render(spec, device="cpu"))
    assert batch[1].layer.name == "blocks.2" and batch[0].layer.name == "blocks.1"


@pytest.mark.parametrize("method", ["classic", "robust"])
def test_a_stopped_request_leaves_the_batch_and_the_others_stay_intact(method, monkeypatch) -> None:
    monkeypatch.setattr(engine_rows, "MIX_WASTE", float("inf"))  # all three share one chunk
    seen: list[dict[int, tuple[int, int]]] = []

    def stop_the_second_at_step_two() -> list[int]:
        return [1] if seen[-1].get(1) == (2, 5) else []

    requests = [RenderRequest(spec) for spec in specs(method)]
    batch = dict(render_batch(requests, device="cpu", on_progress=seen.append, should_stop=stop_the_second_at_step_two))

    assert sorted(batch) == [0, 2]
    assert seen[:2] == [{0: (1, 5), 1: (1, 5), 2: (1, 5)}, {0: (2, 5), 1: (2, 5), 2: (2, 5)}]
    assert seen[2:] == [{0: (step, 5), 2: (step, 5)} for step in (3, 4, 5)]
    for index in (0, 2):
        assert_same_pictures(batch[index], render(specs(method)[index], device="cpu"))


def test_bf16_climbs_nearly_as_high_and_activations_are_measured_in_fp32() -> None:
    spec = RenderSpec(layer="blocks.2", filters="0-3", **BASE)
    fp32, bf16 = render(spec, device="cpu"), render(spec.model_copy(update={"precision": "bf16"}), device="cpu")
    model, layer = load_model("efficientnet_lite0"), resolve_layer("efficientnet_lite0", "blocks.2", 32)
    pictures = torch.stack([torch.from_numpy(pixels_of(item.png)) for item in bf16.pictures]).permute(0, 3, 1, 2)
    with torch.no_grad():
        (output,) = FeatureExtractor(model, [layer.module_path])(pictures.float())
    measured = channel()(Activations(select_channels(output, torch.tensor([0, 1, 2, 3]))))
    for item, ours, reference in zip(bf16.pictures, measured.tolist(), fp32.pictures, strict=True):
        assert item.activation == pytest.approx(ours, rel=1e-4, abs=1e-4)  # the PNG's own fp32 activation
        assert item.activation > item.start_activation + 1.0
        assert item.activation == pytest.approx(reference.activation, rel=0.25)
    assert [item.png for item in bf16.pictures] != [item.png for item in fp32.pictures]


def row(request: int, layer: str, cost: float) -> Row:
    info = LayerInfo(layer, (), layer, False, "Conv2d", (8, 4, 4), 0, 8)
    return Row(request, 0, 0, 0, info, cost)


def test_chunks_go_shallow_first_and_mix_layers_only_when_that_wastes_little() -> None:
    shallow, close, deep = [row(0, "a", 100.0)], [row(1, "b", 105.0)], [row(2, "c", 200.0), row(2, "c", 200.0)]
    chunks = plan_chunks(deep + close + shallow, diversity=1, capacity=lambda layer: 8)
    assert [[r.layer.name for r in chunk] for chunk in chunks] == [["a", "b"], ["c", "c"]]
    small = plan_chunks(shallow + close + deep, diversity=1, capacity=lambda layer: 1)
    assert [len(chunk) for chunk in small] == [1, 1, 1, 1]
    pairs = plan_chunks(deep + deep, diversity=2, capacity=lambda layer: 3)  # diversity groups stay whole
    assert [len(chunk) for chunk in pairs] == [2, 2]
