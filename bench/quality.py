"""Picture quality: classic, robust and maco against a 512-step Lucid-style reference, in one run.

    python -m bench.quality [--filters 8] [--size 128] [--robust-steps 48,64] [--layers blocks.3] [--quick]
                            [--grids DIR]

For each layer, every method renders the same filters; each picture is scored by the 8-bit PNG
it produces (testkit.scoring): the target filter's mean activation as it is, the same averaged
over random jitter/scale/rotation of the PNG (noise that fools the filter collapses under a small
move; real structure survives), and the fraction of dead filters. "vs ref" is a method's
transformed activation over the reference's, "time vs ref@256" its seconds over what the reference
took for its first 256 steps (the goal for the default robust: at least 100 % in at most 33 %).
Grids land in var/bench-quality/ (``--grids``). Accentuation from photos is bench/accentuation.py.
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
from core.engine.runtime import configure_process
from core.grid import encode_grid
from core.spec import METHOD_DEFAULTS, RenderSpec
from testkit.lucid_reference import lucid_render
from testkit.planted_weights import plant_vgg16_weights_if_missing
from testkit.scoring import decode, score

GRIDS = Path("var/bench-quality")
LAYERS = [
    ("efficientnet_lite0", "blocks.1", "early"),
    ("efficientnet_lite0", "blocks.3", "middle"),
    ("efficientnet_lite0", "blocks.5", "late"),
    ("vgg16", "block4_conv1", "VGG16 structure"),
]
HALF_REFERENCE = 256  # the goal's yardstick: the reference's time for this many steps


@dataclass
class Score:
    method: str
    steps: int
    seconds: float
    activation: float
    transformed: float
    dead: float


@dataclass
class Reference:
    score: Score
    half_seconds: float  # its first HALF_REFERENCE steps


def engine_run(spec: RenderSpec) -> tuple[torch.Tensor, float]:
    """The engine's pictures of ``spec`` as (B, H, W, 3) uint8 decoded from their PNGs, and the seconds taken.

    A 2-step run goes first, untimed, as a worker warms its kernels at start: oneDNN makes them per
    shape on first use."""
    render(spec.model_copy(update={"steps": 2}), device="cpu")
    started = time.perf_counter()
    result = render(spec, device="cpu")
    return decode(result.pictures), time.perf_counter() - started


def score_layer(
    model_name: str,
    layer_name: str,
    filters: list[int],
    size: int,
    reference_steps: int,
    robust_steps: list[int],
    grids: Path,
) -> tuple[list[Score], Reference]:
    """Every method on one layer's filters, scored; each method's grid written to ``grids``."""
    model = load_model(model_name)
    layer = resolve_layer(model_name, layer_name, size)
    base = {"model": model_name, "layer": layer_name, "filters": filters, "size": size}
    default_steps = METHOD_DEFAULTS["robust"]["steps"]
    scores: list[Score] = []

    def add(method: str, steps: int, pictures: torch.Tensor, seconds: float) -> Score:
        scores.append(Score(method, steps, seconds, *score(model, layer, filters, pictures)))
        name = f"{model_name}-{layer_name}-{method.split()[0]}-{steps}.png"
        (grids / name).write_bytes(encode_grid([encode_png(p) for p in pictures], [str(f) for f in filters]))
        return scores[-1]

    add("classic", 20, *engine_run(RenderSpec(method="classic", steps=20, **base)))
    robust = add("robust (default)", default_steps, *engine_run(RenderSpec(method="robust", **base)))
    for steps in robust_steps:
        add("robust", steps, *engine_run(RenderSpec(method="robust", steps=steps, **base)))
    classic_20 = scores[0].seconds
    equal_time_steps = max(1, math.floor(20 * robust.seconds / classic_20))
    add(
        "classic (equal time)",
        equal_time_steps,
        *engine_run(RenderSpec(method="classic", steps=equal_time_steps, **base)),
    )
    add("maco (default)", METHOD_DEFAULTS["maco"]["steps"], *engine_run(RenderSpec(method="maco", **base)))
    features = FeatureExtractor(model, [layer.module_path])
    lucid_render(features, layer.relu, filters, size, 2)  # warm-up, like the engine's
    np.random.seed(0)
    torch.manual_seed(0)
    started = time.perf_counter()
    clock: dict[int, float] = {}
    reference = lucid_render(
        features,
        layer.relu,
        filters,
        size,
        reference_steps,
        on_step=lambda done: clock.setdefault(done, time.perf_counter() - started) if done == HALF_REFERENCE else None,
    )
    seconds = time.perf_counter() - started
    reference_score = add("lucid-style reference", reference_steps, reference, seconds)
    half = clock.get(HALF_REFERENCE, seconds * HALF_REFERENCE / reference_steps)
    return scores[:-1], Reference(reference_score, half)


def print_scores(scores: list[Score], reference: Reference) -> None:
    """One line per method, the reference last."""
    ref = reference.score
    print(
        f"{'method':24}{'steps':>6}{'seconds':>9}{'activation':>12}{'transformed':>13}{'vs ref':>8}"
        f"{'time vs ref@256':>17}{'dead':>6}"
    )
    for s in [*scores, ref]:
        print(
            f"{s.method:24}{s.steps:6d}{s.seconds:9.1f}{s.activation:12.2f}{s.transformed:13.2f}"
            f"{s.transformed / ref.transformed:7.0%} {s.seconds / reference.half_seconds:16.0%} {s.dead:5.0%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--reference-steps", type=int, default=512)
    parser.add_argument("--robust-steps", default="", help="robust at these step counts too, e.g. 48,64 (a sweep)")
    parser.add_argument("--layers", default="", help="only these layers, e.g. blocks.3,blocks.5")
    parser.add_argument("--quick", action="store_true", help="the middle layer, 4 filters")
    parser.add_argument("--grids", type=Path, default=GRIDS, help=f"where the grids go ({GRIDS})")
    args = parser.parse_args()
    layers = LAYERS[1:2] if args.quick else LAYERS
    if args.layers:
        layers = [entry for entry in LAYERS if entry[1] in args.layers.split(",")]
    threads = configure_process()  # as the CLI and the workers run the engine: its allocator kept warm
    filters = list(range(4 if args.quick else args.filters))
    robust_steps = [int(steps) for steps in args.robust_steps.split(",") if steps]
    args.grids.mkdir(parents=True, exist_ok=True)
    if any(model == "vgg16" for model, _, _ in layers) and plant_vgg16_weights_if_missing():
        print("VGG16 weights not found: its rows use a planted random state dict (structure only).")

    started = time.perf_counter()
    for model_name, layer_name, depth in layers:
        scores, reference = score_layer(
            model_name, layer_name, filters, args.size, args.reference_steps, robust_steps, args.grids
        )
        print(f"\n{model_name} {layer_name} ({depth}), {len(filters)} filters, {args.size} px, {threads} threads")
        print_scores(scores, reference)
    print(f"\ngrids: {args.grids}/ ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
