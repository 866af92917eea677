"""The cost estimates the API refuses by and the engine plans chunks with."""

from itertools import pairwise

from core.engine.batch_plan import rows_per_chunk
from core.engine.layers import layer_costs, list_layers, resolve_layer
from core.engine.optimizers import RobustAscent
from core.engine.transforms import STANDARD
from core.job_cost import ROBUST_PAD, ROBUST_VIEWS, LayerCost, frame_count, held_bytes, work_flops
from core.spec import RenderSpec

MB = 2**20


def spec(**changes: object) -> RenderSpec:
    return RenderSpec.model_validate({"model": "vgg16", "layer": "block4_conv1", "filters": "0-19", **changes})


def test_the_estimates_use_the_engines_robust_views_and_padding() -> None:
    assert (ROBUST_VIEWS, ROBUST_PAD) == (RobustAscent.VIEWS, STANDARD.pad)


def test_layer_costs_grow_with_depth_and_scale_with_pixels() -> None:
    layers = list_layers("vgg16", 128)
    costs = [layer_costs("vgg16", (128, 128), layer) for layer in layers]
    assert all(a[0] <= b[0] and a[1] < b[1] for a, b in pairwise(costs))  # pools add no FLOPs
    assert costs[10][0] == 6_700_400_640  # block4_conv1 at 128 px: 6.7 GFLOP, as DESIGN measured
    at_256 = layer_costs("vgg16", (256, 256), resolve_layer("vgg16", "block4_conv1", 256))
    estimate = LayerCost(*costs[10], (128, 128)).at((256, 256))
    assert (estimate.flops, estimate.activations) == (at_256[0], at_256[1])


def test_the_seeds_workload_is_a_few_tflop_and_robust_costs_its_views() -> None:
    cost = LayerCost(
        *layer_costs("vgg16", (128, 128), resolve_layer("vgg16", "block4_conv1", 128)),
        (128, 128),
    )
    assert 8e12 < work_flops(spec(size=128), cost) < 9e12  # 20 filters x 20 steps x (forward + backward)
    assert work_flops(spec(size=128, method="robust"), cost) > 2 * 128 / 20 * work_flops(spec(size=128), cost)


def test_frames_count_in_the_memory_plan_and_shrink_the_chunks() -> None:
    assert [frame_count(spec(steps=10, snapshots=n)) for n in (0, 1, 3, 10)] == [
        0,
        10,
        4,
        1,
    ]
    assert held_bytes(spec(size=128, steps=100, snapshots=1)) == 20 * 128 * 128 * 3 * 102 + 128 * 128 * 3 * 100
    layer = resolve_layer("vgg16", "block4_conv1", 128)
    plain = rows_per_chunk(spec(size=128), layer, 256 * MB)
    animated = spec(size=128, steps=1000, snapshots=1)
    assert rows_per_chunk(animated, layer, 256 * MB - held_bytes(animated)) < plain / 2


def test_the_catalog_publishes_each_layers_cost_at_its_size() -> None:
    from core.settings import Settings
    from worker.catalog import model_entries

    (entry,) = model_entries(Settings(models=["vgg16"]))
    conv = next(layer for layer in entry.layers if layer.name == "block4_conv1")
    assert (conv.flops, conv.activations) == layer_costs("vgg16", (224, 224), resolve_layer("vgg16", "block4_conv1"))
