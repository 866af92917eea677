"""Engine throughput against a naive seed port and the machine's conv roofline, in one run.

    python -m bench.engine [--filters 16] [--steps 20] [--size 128] [--layer block4_conv1]

Prints filter-steps per second (one filter, one optimization step) for VGG16 at the seed's
settings. Timings depend on arithmetic, not on weight values, so without the real VGG16
weights a seeded random state dict is planted in a temporary TORCH_HOME.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.naive_seed import naive_render
from core.engine import list_layers, load_model, render, weights_available
from core.engine.render import start_pixels
from core.spec import RenderSpec


def conv_flops_per_image(layer_name: str, size: int) -> float:
    """Forward FLOPs (2 per multiply-add) of VGG16's convs up to and including ``layer_name``."""
    flops, in_channels = 0.0, 3
    for layer in list_layers("vgg16", size):
        channels, height, width = layer.output_shape
        if layer.is_conv:
            flops += 2 * in_channels * channels * 9 * height * width
        in_channels = channels
        if layer.name == layer_name:
            return flops
    raise ValueError(layer_name)


def peak_conv_flops(size: int, repeats: int = 5) -> tuple[float, str]:
    """The best FLOP/s this machine's fp32 conv reaches on the VGG16 conv shapes (batch 16, channels-last)."""
    best, best_shape = 0.0, ""
    for channels, side in ((64, size), (128, size // 2), (256, size // 4), (512, size // 8)):
        x = torch.randn(16, channels, side, side).contiguous(memory_format=torch.channels_last)
        w = torch.randn(channels, channels, 3, 3).contiguous(memory_format=torch.channels_last)
        F.conv2d(x, w, padding=1)  # warm-up: lets oneDNN pick its kernel
        started = time.perf_counter()
        for _ in range(repeats):
            F.conv2d(x, w, padding=1)
        seconds = (time.perf_counter() - started) / repeats
        rate = 2 * 16 * channels * channels * 9 * side * side / seconds
        if rate > best:
            best, best_shape = rate, f"{channels}->{channels} 3x3 at {side}x{side}"
    return best, best_shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--layer", default="block4_conv1")
    parser.add_argument("--naive-filters", type=int, default=2, help="filters for the (slow) naive port")
    args = parser.parse_args()

    if not weights_available("vgg16"):
        from tests.engine_fixtures import plant_vgg16_weights

        os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="filterviz-bench-")
        plant_vgg16_weights(Path(os.environ["TORCH_HOME"]))
        print("VGG16 weights not found: timing a planted random state dict (same arithmetic).")

    spec = RenderSpec(layer=args.layer, filters=f"0-{args.filters - 1}", steps=args.steps, size=args.size)
    render(spec.model_copy(update={"steps": 1}), device="cpu")  # load and warm up
    engine_seconds = render(spec, device="cpu").seconds["optimize"]
    engine_rate = args.filters * args.steps / engine_seconds

    model = load_model("vgg16")
    conv_base = torch.nn.Sequential(model[0], model[1].features)  # the seed's include_top=False
    layer = next(info for info in list_layers("vgg16", args.size) if info.name == args.layer)
    index = int(layer.module_path.split(".")[1])
    output_module = model[1].features[index + 1 if layer.relu else index]  # the ReLU after a conv
    starts = start_pixels(spec, None)
    started = time.perf_counter()
    for row in range(args.naive_filters):
        naive_render(conv_base, output_module, row, starts[row], args.steps, 1.0)
    naive_rate = args.naive_filters * args.steps / (time.perf_counter() - started)

    flops_per_filter_step = 2 * conv_flops_per_image(args.layer, args.size)  # forward + input gradient
    peak, peak_shape = peak_conv_flops(args.size)
    roofline_rate = peak / flops_per_filter_step

    print(f"\nVGG16 {args.layer}, {args.filters} filters, {args.steps} steps, {args.size} px, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"work per filter-step: {flops_per_filter_step / 1e9:.1f} GFLOP (forward to the layer + input gradient)")
    print(f"measured conv peak: {peak / 1e9:.1f} GFLOP/s fp32 ({peak_shape}, batch 16)\n")
    print(f"{'':28}{'filter-steps/s':>16}{'vs naive':>10}{'of roofline':>13}")
    for name, rate in (("filterviz classic (fp32)", engine_rate), ("naive seed port", naive_rate),
                       ("roofline (conv peak)", roofline_rate)):
        print(f"{name:28}{rate:16.2f}{rate / naive_rate:9.2f}x{rate / roofline_rate:12.0%}")


if __name__ == "__main__":
    main()
