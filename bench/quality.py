"""Picture quality: classic vs robust vs a 512-step Lucid-style reference, in one run.

    python -m bench.quality [--filters 8] [--size 128] [--quick]

For each layer, every method renders the same filters; each picture is scored by the 8-bit PNG
it produces: the target filter's mean activation as it is, the same averaged over random
jitter/scale/rotation of the PNG (noise that fools the filter collapses under a small move;
real structure survives), and the fraction of dead filters. Grids land in var/bench-quality/.
"""

import argparse
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.lucid_reference import lucid_render
from core.engine import load_model, render, resolve_layer, weights_available
from core.engine.codec import encode_png
from core.engine.features import LayerProbe
from core.engine.objectives import channel
from core.engine.render import FilterRender
from core.engine.transforms import random_warp
from core.grid import encode_grid
from core.spec import METHOD_DEFAULTS, RenderSpec

OUT = Path("var/bench-quality")
LAYERS = [("efficientnet_lite0", "blocks.1", "early"), ("efficientnet_lite0", "blocks.3", "middle"),
          ("efficientnet_lite0", "blocks.5", "late"), ("vgg16", "block4_conv1", "VGG16 structure")]
EVAL_WARPS = 16


@dataclass
class Score:
    method: str
    steps: int
    seconds: float
    activation: float
    transformed: float
    dead: float


def score(model: torch.nn.Module, layer, filters: list[int], pictures: torch.Tensor) -> tuple[float, float, float]:
    """(mean activation, mean activation under random warps, dead fraction) of (B, H, W, 3) uint8 pictures."""
    probe = LayerProbe(model, [layer.module_path])
    targets = torch.tensor(filters)
    pixels = pictures.permute(0, 3, 1, 2).float()

    def measure(x: torch.Tensor) -> torch.Tensor:
        (output,) = probe(x)
        return channel(torch.relu(output) if layer.relu else output, targets)

    with torch.no_grad():
        plain = measure(pixels)
        generators = [torch.Generator().manual_seed(1000 + i) for i in range(len(filters))]
        warped = torch.stack([measure(random_warp(pixels, generators)) for _ in range(EVAL_WARPS)]).mean(dim=0)
    return plain.mean().item(), warped.mean().item(), (plain <= 0).float().mean().item()


def decode(results: list[FilterRender]) -> torch.Tensor:
    import io

    from PIL import Image

    return torch.stack([torch.from_numpy(np.array(Image.open(io.BytesIO(r.png)).convert("RGB"))) for r in results])


def engine_run(spec: RenderSpec) -> tuple[torch.Tensor, float]:
    started = time.perf_counter()
    result = render(spec, device="cpu")
    return decode(result.filters), time.perf_counter() - started


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
    robust_steps = METHOD_DEFAULTS["robust"]["steps"]
    OUT.mkdir(parents=True, exist_ok=True)

    if not weights_available("vgg16"):
        from tests.engine_fixtures import plant_vgg16_weights

        os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="filterviz-bench-")
        plant_vgg16_weights(Path(os.environ["TORCH_HOME"]))
        print("VGG16 weights not found: its rows use a planted random state dict (structure only).")

    for model_name, layer_name, depth in layers:
        model = load_model(model_name)
        layer = resolve_layer(model_name, layer_name, args.size)
        base = {"model": model_name, "layer": layer_name, "filters": filters, "size": args.size}
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
        add("classic (equal time)", equal_time_steps, *engine_run(RenderSpec(method="classic", steps=equal_time_steps, **base)))
        add("robust", robust_steps, robust, robust_seconds)
        np.random.seed(0)
        torch.manual_seed(0)
        started = time.perf_counter()
        reference = lucid_render(LayerProbe(model, [layer.module_path]), layer.relu, filters, args.size, reference_steps)
        add("lucid-style reference", reference_steps, reference, time.perf_counter() - started)

        lucid = scores[-1]
        print(f"\n{model_name} {layer_name} ({depth}), {len(filters)} filters, {args.size} px")
        print(f"{'method':24}{'steps':>6}{'seconds':>9}{'activation':>12}{'transformed':>13}{'vs ref':>8}{'dead':>6}")
        for s in scores:
            print(f"{s.method:24}{s.steps:6d}{s.seconds:9.1f}{s.activation:12.2f}{s.transformed:13.2f}"
                  f"{s.transformed / lucid.transformed:7.0%} {s.dead:5.0%}")
    print(f"\ngrids: {OUT}/")


if __name__ == "__main__":
    main()
