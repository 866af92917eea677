"""filterviz on a GPU, unattended: does every model render there as on the CPU, how fast is the VGG16 sweep.

    python -m bench.gpu [--device cuda] [--quick]      # make bench-gpu
    python -m bench.gpu --device cpu --quick           # the dry run the test suite makes (a minute)

In order, each section on its own (one that fails prints "could not: ..." and the rest go on), all
within BUDGET_SECONDS (a section that would start later is skipped, and says so):

1. the device, and its arithmetic peak measured per precision (bench.peaks: fp32 with and without
   TF32, bf16), beside the datasheet's for the cards it knows (H100, H200);
2. every model loads and renders on the device as on the CPU: classic and robust, fp32 and bf16, a few
   filters of a middle layer, compared within TOLERANCES (missing weights are planted: arithmetic only);
3. the GPU choices, each measured on a sample of the sweep and the faster kept for what follows:
   TF32 on/off, cudnn.benchmark on/off, the memory budget (FILTERVIZ_MEMORY_BUDGET_MB: rows per chunk),
   and torch.compile / CUDA graphs on VGG16's forward and input gradient (the engine renders eagerly:
   this says what compiling would pay);
4. the whole VGG16 sweep, every one of its 4,224 conv filters, 20 classic steps, 128 px, in fp32 and
   bf16, and robust on the seed's figure set (20 filters of each conv layer): seconds, filter-steps/s,
   peak memory (torch.cuda.max_memory_allocated) and the fraction of the measured and datasheet peaks;
5. one job end to end through `filterviz serve` (a real worker process) on the device.

Exit status: 0 when everything it could do went right (what it could not do, e.g. no CUDA, is
printed), 1 when a check failed or a section raised. Planted VGG16 weights are timed where the real
ones are missing (same arithmetic). ``--quick`` shrinks every workload to seconds.
"""

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.engine import engine_step_flops
from bench.peaks import best_seconds, peak_matmul_flops
from bench.service import serving
from bench.sweep import wait_finished
from core.engine import RenderRequest, list_layers, list_models, render, render_batch
from core.engine.batch_plan import plan_batch
from core.engine.features import FeatureExtractor
from core.engine.layers import check_spec
from core.engine.models import load_model
from core.engine.runtime import configure_process
from core.errors import WeightsUnavailable
from core.settings import Settings
from core.spec import RenderSpec
from testkit.planted_weights import plant_missing_weights, plant_vgg16_weights_if_missing

BUDGET_SECONDS = 450.0  # the whole run within 8 minutes on one H100/H200, with room to spare
QUICK_BUDGET_SECONDS = 1800.0  # the dry run's workloads are tiny: on a busy CPU, let it finish rather than skip
# Dense tensor-core TFLOP/s from NVIDIA's datasheets (SXM; the PCIe H100 is slower): bf16, tf32, fp32 (no tensor cores)
DATASHEET_TFLOPS = {
    "H200": {"bf16": 989.0, "tf32": 494.7, "fp32": 66.9},
    "H100 PCIe": {"bf16": 756.0, "tf32": 378.0, "fp32": 51.2},
    "H100": {"bf16": 989.0, "tf32": 494.7, "fp32": 66.9},
}
GPU_MATMUL_SIDES = (4096, 8192)
SAMPLE = {"block3_conv1": 256, "block5_conv3": 512}  # the choices' sample of the sweep: a shallow and the deepest layer
SAMPLE_QUICK = {"block3_conv1": 2, "block5_conv3": 2}
COMPARE_FILTERS = 4
QUICK_MODELS = ("efficientnet_lite0",)  # the cheapest; vgg16 is in every other section
COMPARE_STEPS = {"classic": 5, "robust": 8}  # few steps: the device's rounding has had little time to grow


@dataclass(frozen=True)
class Tolerance:
    """How far the device's pictures may be from the CPU's: the relative difference of each picture's
    activation, and the mean absolute difference of its 8-bit pixels (in levels of 255)."""

    activation: float
    pixels: float


# fp32 (TF32 off for the check): the same arithmetic in another order, a rounding apart after a few steps.
# bf16: autocast keeps 8 bits of mantissa, and the two devices run different ops in bf16; the pictures
# drift apart a little, their strength must not.
TOLERANCES = {"fp32": Tolerance(activation=0.01, pixels=1.0), "bf16": Tolerance(activation=0.10, pixels=12.0)}


class Run:
    """The sections' outcomes: what was done, what could not be, what failed; and the time left."""

    def __init__(self, budget: float) -> None:
        self.deadline = time.monotonic() + budget
        self.could_not: list[str] = []
        self.failed: list[str] = []

    @contextmanager
    def section(self, title: str, needs_seconds: float = 0.0) -> Iterator[bool]:
        """Yields whether to run the section (False: out of time); an exception in it is printed, not raised."""
        print(f"\n--- {title}", flush=True)
        if time.monotonic() + needs_seconds > self.deadline:
            self.skip(f"{title}: out of time")
            yield False
            return
        started = time.perf_counter()
        try:
            yield True
        except Exception as error:
            self.failed.append(f"{title}: {type(error).__name__}: {error}")
            print(f"could not: {title}: {type(error).__name__}: {error}", flush=True)
        print(f"({title}: {time.perf_counter() - started:.1f} s)", flush=True)

    def skip(self, what: str) -> None:
        self.could_not.append(what)
        print(f"could not: {what}", flush=True)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failed.append(what)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def datasheet(device: torch.device) -> dict[str, float] | None:
    """The datasheet's TFLOP/s for this card, where it is one the table knows."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peaks for card, peaks in DATASHEET_TFLOPS.items() if all(w in name for w in card.split())), None)


# -- 1. the device and its peaks -------------------------------------------------------------------


def measure_peaks(device: torch.device, quick: bool) -> dict[str, float]:
    """FLOP/s of large matrix products: fp32 without TF32, with TF32 (GPU only), bf16."""
    sides = (256,) if quick else (GPU_MATMUL_SIDES if device.type == "cuda" else (1024, 2048))
    peaks = {}
    for name, dtype, tf32 in (
        ("fp32", torch.float32, False),
        ("tf32", torch.float32, True),
        ("bf16", torch.bfloat16, False),
    ):
        if name == "tf32" and device.type != "cuda":
            continue
        torch.backends.cuda.matmul.allow_tf32 = tf32
        peaks[name], side = peak_matmul_flops(dtype, device, sides)
        print(f"measured matmul peak {name}: {peaks[name] / 1e12:8.2f} TFLOP/s ({side}x{side})")
    torch.backends.cuda.matmul.allow_tf32 = True  # configure_process's default
    return peaks


# -- 2. every model on the device as on the CPU ----------------------------------------------------


def middle_layer(model: str, size: int) -> str:
    layers = [layer for layer in list_layers(model, size) if 0 not in layer.output_shape[1:]]
    return layers[len(layers) // 2].name


def pixels_of(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)


def cpu_renders_bf16() -> bool:
    """Whether this machine's CPU side can render in bf16 at all (oneDNN's bf16 convolutions need AVX512-BF16,
    AVX-NE-CONVERT or AVX512BW/VL/DQ): a one-step render through VGG16's first convs says."""
    spec = RenderSpec(layer="block2_conv1", filters=[0], steps=1, size=16, precision="bf16")  # after fused convs
    try:
        render(spec, device="cpu")
    except RuntimeError:
        return False
    return True


def compare_model(
    run: Run, model: str, device: torch.device, weights_dir: Path | None, quick: bool, precisions: tuple[str, ...]
) -> None:
    """Classic and robust in each precision: the device's pictures against the CPU's, within TOLERANCES."""
    size = 32 if quick else 64
    layer = middle_layer(model, size)
    for method in ("classic", "robust"):
        for precision in precisions:
            spec = RenderSpec(
                model=model,
                layer=layer,
                filters=f"0-{(2 if quick else COMPARE_FILTERS) - 1}",
                method=method,
                steps=2 if quick else COMPARE_STEPS[method],
                size=size,
                precision=precision,
            )
            results = {}
            for where in ("cpu", str(device)):
                with tf32(False):  # the fp32 check compares fp32 with fp32
                    results[where] = render(spec, weights_dir=weights_dir, device=where)
            cpu, other = results["cpu"].pictures, results[str(device)].pictures
            pairs = list(zip(cpu, other, strict=True))
            activation = max(abs(a.activation - b.activation) / max(abs(a.activation), 1e-3) for a, b in pairs)
            pixels = max(float(np.abs(pixels_of(a.png or b"") - pixels_of(b.png or b"")).mean()) for a, b in pairs)
            tolerance = TOLERANCES[precision]
            ok = activation <= tolerance.activation and pixels <= tolerance.pixels
            run.check(ok, f"{model} {method} {precision}: activation {activation:.2%}, pixels {pixels:.2f} levels")
            print(
                f"{model:20}{layer:20} {method:9}{precision:6} activation differs {activation:7.2%} "
                f"(<= {tolerance.activation:.0%}), pixels {pixels:5.2f} levels (<= {tolerance.pixels:g})  "
                f"{'match' if ok else 'DIFFER'}",
                flush=True,
            )


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# -- 3. the GPU choices, measured --------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """Requests of one batch (one per layer) and how much a render of them computes."""

    requests: list[RenderRequest]
    flops: float  # what the engine computes (bench.engine.engine_step_flops), every row and step

    @property
    def filter_steps(self) -> int:
        return sum(len(r.spec.filters or []) * (r.spec.steps or 0) for r in self.requests)


def workload(
    layers: dict[str, int], steps: int, size: int, method: str = "classic", precision: str = "fp32"
) -> Workload:
    """``layers``: VGG16 layer -> how many of its first filters."""
    requests = [
        RenderRequest(
            RenderSpec(layer=layer, filters=list(range(n)), steps=steps, size=size, method=method, precision=precision)
        )
        for layer, n in layers.items()
    ]
    flops = sum(n * steps * engine_step_flops(layer, size) for layer, n in layers.items())
    return Workload(requests, flops)


def time_render(work: Workload, device: torch.device, memory_budget_mb: int) -> tuple[float, int]:
    """(seconds, peak bytes allocated on the device) of one render_batch of ``work``."""
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    done = list(render_batch(work.requests, device=str(device), memory_budget_mb=memory_budget_mb))
    sync(device)
    seconds = time.perf_counter() - started
    assert len(done) == len(work.requests), "a request of the batch yielded nothing"
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return seconds, peak


def choose(label: str, options: dict[str, Callable[[], float]]) -> str:
    """Time each option (a callable returning seconds), print them, return the fastest's name."""
    seconds = {name: run() for name, run in options.items()}
    fastest = min(seconds, key=seconds.__getitem__)
    print(f"{label}: " + ", ".join(f"{name} {s:.2f} s" for name, s in seconds.items()) + f" -> {fastest}", flush=True)
    return fastest


def choose_math(sample: Workload, device: torch.device, budget: int) -> None:
    """TF32 and cudnn.benchmark on and off (the second run of each: the first pays the autotuning)."""

    def timed(tf32_on: bool, benchmark: bool) -> Callable[[], float]:
        def run() -> float:
            with tf32(tf32_on):
                torch.backends.cudnn.benchmark = benchmark
                time_render(sample, device, budget)
                return time_render(sample, device, budget)[0]

        return run

    use_tf32 = choose("TF32 (fp32 convs and matmuls)", {"on": timed(True, True), "off": timed(False, True)}) == "on"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = use_tf32
    benchmark = choose("cudnn.benchmark", {"on": timed(use_tf32, True), "off": timed(use_tf32, False)}) == "on"
    torch.backends.cudnn.benchmark = benchmark


def choose_budget(sample: Workload, device: torch.device, settings: Settings) -> int:
    """The memory budget (MB) whose chunks render the sample fastest: the default, and larger ones up to
    half the device's free memory."""
    free = torch.cuda.mem_get_info(device)[0] // 2**20 if device.type == "cuda" else settings.memory_budget_mb
    budgets = sorted({settings.memory_budget_mb, *(b for b in (16_384, 65_536, free // 2) if b <= free // 2)})
    specs = [r.spec for r in sample.requests]
    layers = [check_spec(spec) for spec in specs]
    options = {}
    for budget in budgets:
        chunks = len(plan_batch(specs, layers, budget))
        options[f"{budget} MB ({chunks} chunks)"] = lambda budget=budget: time_render(sample, device, budget)[0]
    best = choose("memory budget (FILTERVIZ_MEMORY_BUDGET_MB)", options)
    return int(best.split()[0])


def compile_gain(device: torch.device, quick: bool) -> None:
    """VGG16's forward to block5_conv3 and its input gradient, eager against torch.compile (default, and
    reduce-overhead: CUDA graphs); compile times apart. The engine renders eagerly: a gain here is what
    wiring compile into core/engine/render.py would buy at most."""
    batch, size = (2, 32) if quick else (256, 128)
    model = load_model("vgg16", device=str(device))
    path = "features.28"
    extractor = FeatureExtractor(model, [path])
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)

    def step(forward: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], object]:
        def run() -> object:
            pixels = x.detach().requires_grad_(True)
            forward(pixels).mean().backward()
            return pixels.grad

        return run

    def eager(pixels: torch.Tensor) -> torch.Tensor:
        return extractor(pixels)[0]

    rates = {"eager": best_seconds(step(eager), device)}
    modes = {"compile": "default", "CUDA graphs": "reduce-overhead"} if device.type == "cuda" else {}
    if not modes:
        print("could not: torch.compile is measured on a GPU only (inductor's CPU build takes minutes)")
    for name, mode in modes.items():
        try:
            compiled = torch.compile(eager, mode=mode, dynamic=False)
            started = time.perf_counter()
            step(compiled)()
            sync(device)
            compile_seconds = time.perf_counter() - started
            rates[name] = best_seconds(step(compiled), device)
            print(f"{name} ({mode}): compiled in {compile_seconds:.1f} s")
        except Exception as error:  # dynamo's limits are no failure of filterviz
            print(f"could not: torch.compile {mode}: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
    eager_seconds = rates["eager"]
    print(
        f"one step, batch {batch}, {size} px: "
        + ", ".join(f"{name} {s * 1000:.1f} ms ({eager_seconds / s:.2f}x)" for name, s in rates.items())
    )
    best = min(rates, key=rates.__getitem__)
    verdict = "keep eager (compiling does not pay)" if eager_seconds / rates[best] < 1.1 else f"{best} would pay"
    print(f"-> {verdict}; the engine renders eagerly")


# -- 4. the sweep --------------------------------------------------------------------------------------


def conv_filters(quick: bool) -> dict[str, int]:
    """Every VGG16 conv layer with all its filters (4,224); quick: two layers, two filters each."""
    conv = {layer.name: layer.filters for layer in list_layers("vgg16", 128) if layer.is_conv}
    return {name: 2 for name in list(conv)[:: len(conv) // 2][:2]} if quick else conv


def report(label: str, work: Workload, seconds: float, peak: int, peaks: dict[str, float], card: dict | None) -> None:
    precision = work.requests[0].spec.precision
    achieved = work.flops / seconds
    kind = (
        precision
        if precision == "bf16"
        else ("tf32" if torch.backends.cudnn.allow_tf32 and "tf32" in peaks else "fp32")
    )
    measured = peaks[kind]
    sheet = ""
    if card is not None:
        sheet_peak = card[kind] * 1e12
        sheet = f", {achieved / sheet_peak:.1%} of the datasheet's {sheet_peak / 1e12:.0f}"
    print(
        f"{label:34}{seconds:8.2f} s {work.filter_steps / seconds:12.0f} filter-steps/s  peak memory "
        f"{peak / 2**30:6.2f} GiB  {achieved / 1e12:7.2f} TFLOP/s = {achieved / measured:.1%} of the measured "
        f"matmul peak{sheet}",
        flush=True,
    )


# -- 5. one job through a worker -------------------------------------------------------------------------


def service_job(device: torch.device, quick: bool) -> None:
    job = {"model": "vgg16", "layer": "block4_conv1", "filters": "0-1" if quick else "0-15"}
    job |= {"steps": 2, "size": 32} if quick else {}
    with tempfile.TemporaryDirectory(prefix="filterviz-gpu-") as root:
        env = {"FILTERVIZ_MODELS": '["vgg16"]', "FILTERVIZ_DEVICE": device.type}
        with serving(Path(root), env) as client:
            for attempt in ("first (waits for the worker's warm-up)", "second"):
                started = time.perf_counter()
                response = client.post("/v1/jobs", json={**job, "seed": len(attempt)})
                response.raise_for_status()
                (done,) = wait_finished(client, [response.headers["location"]])
                took = time.perf_counter() - started
                render_seconds = sum(done["seconds"].get(k, 0.0) for k in ("load", "optimize", "encode"))
                print(f"{attempt} job {job}: {took:.2f} s end to end, {render_seconds:.2f} s rendering in the worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (a dry run)")
    parser.add_argument("--quick", action="store_true", help="every workload shrunk to seconds (the tests' dry run)")
    args = parser.parse_args(argv)
    run = Run(QUICK_BUDGET_SECONDS if args.quick else BUDGET_SECONDS)
    configure_process()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        run.skip(f"no CUDA device here (torch {torch.__version__}, built for CUDA {torch.version.cuda})")
        return finish(run)
    if plant_vgg16_weights_if_missing():
        print("VGG16 weights not found: a planted random state dict (same arithmetic).")
    settings = Settings()
    cpu_bf16 = cpu_renders_bf16()
    card = datasheet(device)
    peaks: dict[str, float] = {}
    budget = settings.memory_budget_mb

    with run.section("1. device and arithmetic peaks") as go:
        if go:
            name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
            print(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}; datasheet: {card or 'not known'}")
            peaks = measure_peaks(device, args.quick)
    with run.section("2. every model on the device as on the CPU", needs_seconds=30) as go:
        if go:
            models = list(QUICK_MODELS) if args.quick else [info.name for info in list_models()]
            precisions = ("fp32", "bf16") if cpu_bf16 else ("fp32",)
            if not cpu_bf16:
                run.skip("bf16 against the CPU: this CPU has no bf16 convolutions (oneDNN)")
            with tempfile.TemporaryDirectory(prefix="filterviz-weights-") as planted_dir:
                planted = plant_missing_weights(models, Path(planted_dir))
                if planted:
                    print(f"planted random weights for {', '.join(planted)} (arithmetic only)")
                for model in models:
                    weights_dir = Path(planted_dir) if model in planted else None
                    try:
                        compare_model(run, model, device, weights_dir, args.quick, precisions)
                    except WeightsUnavailable as error:  # a model whose file could not be planted
                        run.skip(f"{model}: {error}")
                    except Exception as error:  # one model's failure: the others are still checked
                        run.failed.append(f"{model}: {type(error).__name__}: {error}")
                        print(f"FAILED: {model}: {type(error).__name__}: {error}", flush=True)
    if device.type == "cpu" and not args.quick:
        run.skip("sections 3-5 are for a GPU (--device cpu runs them only with --quick)")
        return finish(run)
    sample = workload(SAMPLE_QUICK if args.quick else SAMPLE, steps=2, size=32 if args.quick else 128)
    with run.section("3. GPU choices, measured", needs_seconds=60) as go:
        if go:
            choose_math(sample, device, budget)
            budget = choose_budget(sample, device, settings)
            compile_gain(device, args.quick)
    with run.section("4. the VGG16 sweep", needs_seconds=60) as go:
        if go and not peaks:
            run.skip("the sweep's fractions of the peak: no peak was measured")
        elif go:
            filters = conv_filters(args.quick)
            steps, size = (2, 32) if args.quick else (20, 128)
            figure_set = {name: min(20, n) for name, n in filters.items()}
            for label, work in (
                (f"sweep {sum(filters.values())} filters classic fp32", workload(filters, steps, size)),
                (
                    f"sweep {sum(filters.values())} filters classic bf16",
                    workload(filters, steps, size, precision="bf16"),
                ),
                ("figure set robust fp32", workload(figure_set, 2 if args.quick else 128, size, "robust")),
                ("figure set robust bf16", workload(figure_set, 2 if args.quick else 128, size, "robust", "bf16")),
            ):
                if time.monotonic() > run.deadline:
                    run.skip(f"{label}: out of time")
                    continue
                if work.requests[0].spec.precision == "bf16" and device.type == "cpu" and not cpu_bf16:
                    run.skip(f"{label}: this CPU has no bf16 convolutions")
                    continue
                seconds, peak = time_render(work, device, budget)
                report(label, work, seconds, peak, peaks, card)
    with run.section("5. one job through a worker process", needs_seconds=45) as go:
        if go:
            service_job(device, args.quick)
    return finish(run)


def finish(run: Run) -> int:
    print("\n=== summary")
    for what in run.could_not:
        print(f"could not: {what}")
    for what in run.failed:
        print(f"FAILED: {what}")
    print("all checks passed" if not run.failed else f"{len(run.failed)} failed")
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
