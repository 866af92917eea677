"""Picture quality: classic vs robust vs a 512-step Lucid-style reference, in one run.

    python -m bench.quality [--filters 8] [--size 128] [--quick]

For each layer, every method renders the same filters; each picture is scored by the 8-bit PNG
it produces (testkit.scoring): the target filter's mean activation as it is, the same averaged
over random jitter/scale/rotation of the PNG (noise that fools the filter collapses under a small
move; real structure survives), and the fraction of dead filters. Grids land in var/bench-quality/.
"""

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.engine import load_model, render, resolve_layer
from core.engine.codec import encode_png
from core.engine.features import FeatureExtractor
from core.grid import encode_grid
from core.spec import METHOD_DEFAULTS, RenderSpec
from testkit.lucid_reference import lucid_render
from testkit.planted_weights import plant_vgg16_weights_if_missing
from testkit.scoring import decode, score

OUT = Path("var/bench-quality")
LAYERS = [
    ("efficientnet_lite0", "blocks.1", "early"),
    ("efficientnet_lite0", "blocks.3", "middle"),
    ("efficientnet_lite0", "blocks.5", "late"),
    ("vgg16", "block4_conv1", "VGG16 structure"),
]


@dataclass
class Score:
    method: str
    steps: int
    seconds: float
    activation: float
    transformed: float
    dead: float


def engine_run(spec: RenderSpec) -> tuple[torch.Tensor, float]:
    """The engine's pictures of ``spec`` as (B, H, W, 3) uint8 decoded from their PNGs, and the seconds taken."""
    started = time.perf_counter()
    result = render(spec, device="cpu")
    return decode(result.pictures), time.perf_counter() - started


def score_layer(model_name: str, layer_name: str, filters: list[int], size: int, reference_steps: int) -> list[Score]:
    """Every method on one layer's filters, scored; each method's grid written to OUT. The reference comes last."""
    model = load_model(model_name)
    layer = resolve_layer(model_name, layer_name, size)
    base = {"model": model_name, "layer": layer_name, "filters": filters, "size": size}
    robust_steps = METHOD_DEFAULTS["robust"]["steps"]
    scores: list[Score] = []

    def add(method: str, steps: int, pictures: torch.Tensor, seconds: float) -> None:
        scores.append(Score(method, steps, seconds, *score(model, layer, filters, pictures)))
        name = f"{model_name}-{layer_name}-{method.split()[0]}-{steps}.png"
        (OUT / name).write_bytes(encode_grid([encode_png(p) for p in pictures], [str(f) for f in filters]))

    robust, robust_seconds = engine_run(RenderSpec(method="robust", **base))
    classic, classic_seconds = engine_run(RenderSpec(method="classic", steps=robust_steps, **base))
    equal_time_steps = max(1, math.floor(robust_steps * robust_seconds / classic_seconds))
    add("classic", 20, *engine_run(RenderSpec(method="classic", steps=20, **base)))
    add("classic", robust_steps, classic, classic_seconds)
    add(
        "classic (equal time)",
        equal_time_steps,
        *engine_run(RenderSpec(method="classic", steps=equal_time_steps, **base)),
    )
    add("robust", robust_steps, robust, robust_seconds)
    np.random.seed(0)
    torch.manual_seed(0)
    started = time.perf_counter()
    reference = lucid_render(FeatureExtractor(model, [layer.module_path]), layer.relu, filters, size, reference_steps)
    add("lucid-style reference", reference_steps, reference, time.perf_counter() - started)
    return scores


def print_scores(scores: list[Score]) -> None:
    """One line per method; "vs ref" is its transformed activation over the reference's (the last score)."""
    reference = scores[-1]
    print(f"{'method':24}{'steps':>6}{'seconds':>9}{'activation':>12}{'transformed':>13}{'vs ref':>8}{'dead':>6}")
    for s in scores:
        print(
            f"{s.method:24}{s.steps:6d}{s.seconds:9.1f}{s.activation:12.2f}{s.transformed:13.2f}"
            f"{s.transformed / reference.transformed:7.0%} {s.dead:5.0%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--reference-steps", type=int, default=512)
    parser.add_argument("--quick", action="store_true", help="one layer, 4 filters, 128 reference steps")
    args = parser.parse_args()
    layers = LAYERS[1:2] if args.quick else LAYERS
    filters = list(range(4 if args.quick else args.filters))
    reference_steps = 128 if args.quick else args.reference_steps
    OUT.mkdir(parents=True, exist_ok=True)
    if plant_vgg16_weights_if_missing():
        print("VGG16 weights not found: its rows use a planted random state dict (structure only).")

    for model_name, layer_name, depth in layers:
        scores = score_layer(model_name, layer_name, filters, args.size, reference_steps)
        print(f"\n{model_name} {layer_name} ({depth}), {len(filters)} filters, {args.size} px")
        print_scores(scores)
    print(f"\ngrids: {OUT}/")


if __name__ == "__main__":
    main()
