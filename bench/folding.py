"""BatchNorm folded into the conv before it (core.engine.folding; its ReLU or ReLU6 in the same kernel) against
the same network unfolded, in one run.

    python -m bench.folding [--filters 8] [--steps 16] [--size 128] [--rounds 2]

Per model and layer, robust renders timed in turns, folded and unfolded (the model loaded with folding
switched off: the network as it was), each keeping its best round. Prints filter-steps per second and
the speed-up.
Without a model's real weights a seeded random state dict is planted (same arithmetic).
"""

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.engine import load_model, models, render
from core.spec import RenderSpec
from testkit.planted_weights import plant_missing_weights

CASES = [("efficientnet_lite0", "blocks.3"), ("efficientnet_lite0", "blocks.5"), ("resnet50", "layer3")]


@contextmanager
def unfolded() -> Iterator[None]:
    """Models loaded meanwhile as they were before folding: the model cache emptied, folding switched off."""
    models._load_model.cache_clear()
    original = models.fold_batch_norms
    models.fold_batch_norms = lambda network: 0
    try:
        yield
    finally:
        models.fold_batch_norms = original
        models._load_model.cache_clear()


def rate(spec: RenderSpec, weights_dir: Path) -> float:
    """Filter-steps per second of one render, its model loaded beforehand (not timed)."""
    load_model(spec.model, weights_dir)
    started = time.perf_counter()
    render(spec, weights_dir=weights_dir, device="cpu")
    return len(spec.filters or []) * (spec.steps or 0) / (time.perf_counter() - started)


def best_rates(spec: RenderSpec, weights_dir: Path, rounds: int) -> tuple[float, float]:
    """(unfolded, folded) filter-steps/s, the best of ``rounds`` turns each, after a warm-up of each."""
    warm_up = spec.model_copy(update={"steps": 2})
    with unfolded():
        rate(warm_up, weights_dir)
    rate(warm_up, weights_dir)
    best = [0.0, 0.0]
    for _ in range(rounds):
        with unfolded():
            best[0] = max(best[0], rate(spec, weights_dir))
        best[1] = max(best[1], rate(spec, weights_dir))
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="filterviz-folding-") as directory:
        weights_dir = Path(directory)
        planted = plant_missing_weights(sorted({model for model, _ in CASES}), weights_dir)
        if planted:
            print(f"planted random weights (same arithmetic) for: {', '.join(planted)}")
        shape = f"{args.filters} filters, {args.steps} steps, {args.size} px"
        print(f"\nrobust, {shape}: filter-steps/s (best of {args.rounds})")
        print(f"{'model':20}{'layer':10}{'unfolded':>10}{'folded':>10}{'speed-up':>10}")
        for model, layer in CASES:
            spec = RenderSpec(
                model=model,
                layer=layer,
                filters=list(range(args.filters)),
                steps=args.steps,
                size=args.size,
                method="robust",
            )
            plain, folded = best_rates(spec, weights_dir, args.rounds)
            print(f"{model:20}{layer:10}{plain:10.1f}{folded:10.1f}{folded / plain:9.2f}x")


if __name__ == "__main__":
    main()
