"""Engine throughput against a naive seed port, a Lucid-style renderer and the conv roofline, in one run.

    python -m bench.engine [--filters 16] [--steps 20] [--size 128] [--layer block4_conv1] [--rounds 2]

Prints filter-steps per second (one filter, one optimization step) for VGG16 at the seed's
settings: filterviz classic and robust, in fp32 and bf16; the naive seed port; a lucent-style
batched ``render_vis`` (testkit/lucid_reference.py: torch-lucent itself pins kornia<=0.4.1, which does
not import under torch 2.x, so its recipe is re-implemented there line for line); and the roofline,
the measured peak conv FLOP/s of this machine divided by the work of one filter-step, beside the
machine's arithmetic peak (large matrix products, bench.peaks: a Winograd conv can beat it, so a
fraction of the conv peak is not a fraction of the silicon), and "convs alone", the rate if VGG16's
convs (forward and input gradient, each timed at its own shape) were all the work. Variants
run in turns, ``--rounds`` times, each keeping its best round (the machine may be shared). The
naive port and the lucent stand-in get torchvision's plain VGG16 (no fused kernels, the weights in
torchvision's contiguous layout, as ``torchvision.models.vgg16`` loads them), but share
this process's allocator setup (configure_process, as a worker's), which makes them faster than
they would be alone: the ratios are conservative. Timings depend on arithmetic, not on weight
values: without the real VGG16 weights a seeded random state dict is planted in a temporary TORCH_HOME.
"""

import argparse
import copy
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from bench.peaks import peak_matmul_flops
from core.engine import load_model, render, resolve_layer
from core.engine.features import FeatureExtractor
from core.engine.layers import forward_flops
from core.engine.optimizers import RobustAscent
from core.engine.parameterizations import row_start
from core.engine.runtime import configure_process
from core.engine.transforms import STANDARD
from core.spec import RenderSpec
from testkit.lucid_reference import lucid_render
from testkit.naive_seed import naive_render
from testkit.planted_weights import plant_vgg16_weights_if_missing


def plant_weights_if_missing() -> None:
    """Planted random VGG16 weights when the real ones are missing: timings depend on arithmetic only."""
    if plant_vgg16_weights_if_missing():
        print("VGG16 weights not found: timing a planted random state dict (same arithmetic).")


def best_seconds(run: Callable[[], object], repeats: int = 10) -> float:
    """The fastest single call: on a shared machine an average mixes in other work."""
    run()  # warm-up: lets oneDNN pick its kernel
    fastest = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest


def peak_conv_flops(size: int, dtype: torch.dtype) -> tuple[float, str]:
    """The best FLOP/s this machine's conv reaches on the VGG16 conv shapes (batch 16, channels-last)."""
    best, best_shape = 0.0, ""
    for channels, side in ((64, size), (128, size // 2), (256, size // 4), (512, size // 8)):
        x = torch.randn(16, channels, side, side, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(channels, channels, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
        rate = 2 * 16 * channels * channels * 9 * side * side / best_seconds(partial(F.conv2d, x, w, padding=1))
        if rate > best:
            best, best_shape = rate, f"{channels}->{channels} 3x3 at {side}x{side}"
    return best, best_shape


def conv_seconds(x: torch.Tensor, w: torch.Tensor) -> float:
    """Best time of a 3x3 conv's forward plus its input's gradient."""
    grad = torch.randn_like(F.conv2d(x, w, padding=1))
    unit = [1, 1]  # stride, padding and dilation
    mask = [True, False, False]  # only the input's gradient (not the weight's or the bias's)
    backward = partial(torch.ops.aten.convolution_backward, grad, x, w, None, unit, unit, unit, False, [0, 0], 1, mask)
    return best_seconds(partial(F.conv2d, x, w, padding=1)) + best_seconds(backward)


def conv_only_rate(features: torch.nn.Sequential, last: int, side: int, dtype: torch.dtype, batch: int = 16) -> float:
    """Filter-steps/s if the convs up to ``features[last]`` were all the work: each timed alone at
    its own shape, so this is the bound at VGG16's shapes rather than at the best one."""
    seconds = 0.0
    for module in list(features)[: last + 1]:
        if isinstance(module, torch.nn.MaxPool2d):
            side //= 2
        if isinstance(module, torch.nn.Conv2d):
            x = torch.randn(batch, module.in_channels, side, side, dtype=dtype)
            weight = module.weight.detach().to(dtype).contiguous(memory_format=torch.channels_last)
            seconds += conv_seconds(x.contiguous(memory_format=torch.channels_last), weight)
    return batch / seconds


def filter_step_flops(layer: str, side: int) -> float:
    """One filter-step: the forward to the layer and the gradient back to the input (as much again)."""
    return 2 * forward_flops("vgg16", (side, side))[resolve_layer("vgg16", layer, side).module_path]


def engine_step_flops(layer: str, side: int) -> float:
    """What filterviz computes of one filter-step: of the target conv, only the row's own channel."""
    flops = forward_flops("vgg16", (side, side))
    info = resolve_layer("vgg16", layer, side)
    upto = flops[info.module_path]
    before = max((value for value in flops.values() if value < upto), default=0.0)
    return 2 * (before + (upto - before) / info.filters)


def best_rates(variants: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Filter-steps per second of each variant (a callable that runs once and returns filter-steps
    per second), best of ``rounds`` turns."""
    best = dict.fromkeys(variants, 0.0)
    for number in range(rounds):
        for name, run in variants.items():
            best[name] = max(best[name], run())
            print(f"  round {number + 1}: {name:28} {best[name]:7.2f}", flush=True)
    return best


def torchvision_vgg16() -> torch.nn.Module:
    """torchvision's VGG16 as a user of lucent or of the seed has it: no fused conv+ReLU, and its
    weights in torchvision's own (contiguous) layout, not the engine's channels-last."""
    model = copy.deepcopy(load_model("vgg16")).to(memory_format=torch.contiguous_format)
    model[1].features = torch.nn.Sequential(*model[1].features)
    return model


def timed_variants(args: argparse.Namespace, model: torch.nn.Module) -> dict[str, Callable[[], float]]:
    """Each variant: a callable that renders once and returns its filter-steps per second."""
    spec = RenderSpec(layer=args.layer, filters=f"0-{args.filters - 1}", steps=args.steps, size=args.size)
    work = args.filters * args.steps
    layer = resolve_layer("vgg16", args.layer, args.size)
    render(spec.model_copy(update={"steps": 1}), device="cpu")  # load and warm up

    def engine(method: str, precision: str) -> Callable[[], float]:
        variant = RenderSpec(
            layer=args.layer, filters=spec.filters, steps=args.steps, size=args.size, method=method, precision=precision
        )
        return lambda: work / render(variant, device="cpu").seconds["optimize"]

    def lucent() -> float:
        np.random.seed(0)
        torch.manual_seed(0)
        started = time.perf_counter()
        lucid_render(FeatureExtractor(model, [layer.module_path]), layer.relu, spec.filters, args.size, args.steps)
        return work / (time.perf_counter() - started)

    def naive() -> float:
        conv_base = torch.nn.Sequential(model[0], model[1].features)  # the seed's include_top=False
        index = int(layer.module_path.split(".")[1])
        output_module = model[1].features[index + 1 if layer.relu else index]  # the ReLU after a conv
        starts = [row_start(spec, f, 0, None) for f in spec.filters or []]
        started = time.perf_counter()
        for row in range(args.naive_filters):
            naive_render(conv_base, output_module, row, starts[row], args.steps, 1.0)
        return args.naive_filters * args.steps / (time.perf_counter() - started)

    return {
        "filterviz classic fp32": engine("classic", "fp32"),
        "filterviz classic bf16": engine("classic", "bf16"),
        "filterviz robust fp32": engine("robust", "fp32"),
        "filterviz robust bf16": engine("robust", "bf16"),
        "lucent-style render_vis fp32": lucent,
        "naive seed port fp32": naive,
    }


def print_rates(args: argparse.Namespace, threads: int, rates: dict[str, float], model: torch.nn.Module) -> None:
    """The rates against the naive port, lucent, the roofline and the convs alone (both measured here)."""
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    peaks = {name: peak_conv_flops(args.size, dtype) for name, dtype in dtypes.items()}
    arithmetic = {name: peak_matmul_flops(dtype, torch.device("cpu")) for name, dtype in dtypes.items()}
    last = int(resolve_layer("vgg16", args.layer, args.size).module_path.split(".")[1])
    conv_only = {name: conv_only_rate(model[1].features, last, args.size, dtype) for name, dtype in dtypes.items()}
    plain = filter_step_flops(args.layer, args.size)
    padded = filter_step_flops(args.layer, args.size + 2 * STANDARD.pad)
    views = {"robust": RobustAscent.VIEWS, "lucent": 1}  # warped views per step, at the padded size
    work_of = {name: next((padded * n for key, n in views.items() if key in name), plain) for name in rates}

    print(
        f"\nVGG16 {args.layer}, {args.filters} filters, {args.steps} steps, {args.size} px, "
        f"{threads} threads, torch {torch.__version__}"
    )
    print(
        f"work per filter-step: {plain / 1e9:.1f} GFLOP (forward to the layer + input gradient; "
        f"{padded / 1e9:.1f} per view at the {args.size + 2 * STANDARD.pad} px that robust and lucent see; "
        f"robust sees {RobustAscent.VIEWS} views a step)"
    )
    print(
        f"of which filterviz computes {engine_step_flops(args.layer, args.size) / 1e9:.1f} GFLOP: at the target conv "
        f"only each row's own channel (the roofline below counts the whole layer)"
    )
    for precision, (peak, shape) in peaks.items():
        matmul, side = arithmetic[precision]
        print(
            f"measured peak {precision}: conv {peak / 1e9:.0f} GFLOP/s ({shape}, batch 16), "
            f"arithmetic {matmul / 1e9:.0f} GFLOP/s ({side}x{side} matrix product)"
        )
    print("(a Winograd conv does fewer multiplies than counted: its 'effective' rate can exceed the arithmetic peak)")
    header = f"{'of conv peak':>14}{'of arithmetic':>15}{'of conv-only':>14}"
    print(f"\n{'':30}{'filter-steps/s':>15}{'vs naive':>10}{'vs lucent':>11}{header}")
    naive_rate, lucent_rate = rates["naive seed port fp32"], rates["lucent-style render_vis fp32"]
    for name, rate in rates.items():
        precision = name.rsplit(" ", 1)[1]
        roofline = peaks[precision][0] / work_of[name]
        silicon = arithmetic[precision][0] / work_of[name]
        bound = conv_only[precision] * plain / work_of[name]
        print(
            f"{name:30}{rate:15.2f}{rate / naive_rate:9.2f}x{rate / lucent_rate:10.2f}x{rate / roofline:14.0%}"
            f"{rate / silicon:15.0%}{rate / bound:14.0%}"
        )
    for precision, (peak, _) in peaks.items():
        print(f"{f'roofline {precision} ({args.size} px)':30}{peak / plain:15.2f}")
        print(f"{f'arithmetic {precision} ({args.size} px)':30}{arithmetic[precision][0] / plain:15.2f}")
        print(f"{f'convs alone {precision} ({args.size} px)':30}{conv_only[precision]:15.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--layer", default="block4_conv1")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--naive-filters", type=int, default=2, help="filters for the (slow) naive port")
    args = parser.parse_args()
    threads = configure_process()
    plant_weights_if_missing()
    model = torchvision_vgg16()
    variants = timed_variants(args, model)
    print(f"\ntiming ({args.rounds} rounds, best of each):")
    print_rates(args, threads, best_rates(variants, args.rounds), model)


if __name__ == "__main__":
    main()
