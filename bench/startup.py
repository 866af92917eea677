"""Where a command's time goes besides the optimization: imports, weight loading, the layer table.

    python -m bench.startup [--filters 16] [--steps 20]

Runs, each as a process of its own, as a user would:

- ``filterviz render --model vgg16 --layer block4_conv1 --filters 0-15`` (the seed's workload): the
  whole process against the optimization its result.json reports (goal: within 10 %);
- the imports of that command: the CLI and its command, then the engine (torch), whether any service
  library (celery, redis, uvicorn, fastapi, httpx) came along, and whether the render (one filter, one step,
  under ``python -X importtime``) imported torchvision or torch._dynamo (a second each: the engine builds
  torchvision's VGGs itself, core.engine.plain_cnns) or sympy (0.4 s: the layer table's meta trace does
  its own shape arithmetic, core.engine.layers), and what they cost it;
- loading VGG16's weights: core.engine.load_model as a whole (built on the meta device, the .pth
  memory-mapped, its tensors assigned), beside the parts of the way it was loaded before: building the
  network (torchvision's random init), reading the .pth (torch.load, and with mmap=True), copying the
  state dict in, channels-last;
- ``filterviz layers vgg16`` (its second run: the first fills filterviz.layers_cache; goal: under 1 s).

Without VGG16's real weights a planted random state dict is read (same size). Timings of a shared machine:
use the split, not the absolute seconds.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testkit.planted_weights import plant_vgg16_weights_if_missing

SERVICE_LIBRARIES = ("celery", "redis", "uvicorn", "fastapi", "httpx", "kombu")

IMPORTS = f"""
import sys, time
started = time.perf_counter()
import filterviz.cli, filterviz.render_command
cli = time.perf_counter() - started
import core.engine
engine = time.perf_counter() - started - cli
service = sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVICE_LIBRARIES!r}))
print(cli, engine, ','.join(service) or '-')
"""
# imported by torchvision's package (through torchvision.ops), or by torch itself for some meta-device ops
# (its meta addmm: torch._dynamo; its meta conv's checks: sympy)
HEAVY_IMPORTS = ("torchvision", "torch._dynamo", "sympy")

LOAD_SPLIT = """
import time, torch, torchvision
from core.engine import load_model, model_info
from core.engine.fusion import fuse_conv_relu
def timed(run):
    started = time.perf_counter(); value = run(); return value, time.perf_counter() - started
_, whole = timed(lambda: load_model("vgg16"))
path = f"{torch.hub.get_dir()}/checkpoints/{model_info('vgg16').weights_file}"
network, build = timed(lambda: torchvision.models.get_model("vgg16", weights=None))
with torch.device("meta"):
    _, meta = timed(lambda: torchvision.models.get_model("vgg16", weights=None))
state, read = timed(lambda: torch.load(path, map_location="cpu", weights_only=True))
_, mapped = timed(lambda: torch.load(path, map_location="cpu", weights_only=True, mmap=True))
_, assign = timed(lambda: network.load_state_dict(state))
_, layout = timed(lambda: fuse_conv_relu(network).to(memory_format=torch.channels_last))
print(whole, build, meta, read, mapped, assign, layout)
"""


def timed_run(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def render_command(out: str, filters: int, steps: int, python_options: tuple[str, ...] = ()) -> list[str]:
    """The seed's workload: ``filters`` filters of VGG16's block4_conv1, ``steps`` steps, on the CPU."""
    workload = ["--model", "vgg16", "--layer", "block4_conv1", "--filters", f"0-{filters - 1}", "--steps", str(steps)]
    return [sys.executable, *python_options, "-m", "filterviz", "render", *workload, "--device", "cpu", "--out", out]


def import_seconds(importtime: str, module: str) -> float | None:
    """The cumulative seconds ``python -X importtime``'s report gives ``module``; None where it was not imported."""
    for line in importtime.splitlines():
        fields = line.split("|")
        if len(fields) == 3 and fields[2].strip() == module:
            return int(fields[1]) / 1e6
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    if plant_vgg16_weights_if_missing():  # the child processes inherit TORCH_HOME
        print("VGG16 weights not found: reading a planted random state dict (same size).")
    filterviz = [sys.executable, "-m", "filterviz"]
    with tempfile.TemporaryDirectory(prefix="filterviz-startup-") as out:
        whole, _ = timed_run(render_command(out, args.filters, args.steps))
        seconds = json.loads((Path(out) / "result.json").read_text())["seconds"]
        small = render_command(out, filters=1, steps=1, python_options=("-X", "importtime"))
        importtime = subprocess.run(small, capture_output=True, text=True, check=True).stderr
    heavy = {module: import_seconds(importtime, module) for module in HEAVY_IMPORTS}
    _, imports = timed_run([sys.executable, "-c", IMPORTS])
    cli, engine, service = imports.split()
    _, split = timed_run([sys.executable, "-c", LOAD_SPLIT])
    whole_load, build, meta, read, mapped, assign, layout = map(float, split.split())
    timed_run([*filterviz, "layers", "vgg16"])  # fills the cache
    layers, _ = timed_run([*filterviz, "layers", "vgg16"])

    optimize = seconds["optimize"]
    print(f"\nfilterviz render vgg16 block4_conv1, {args.filters} filters, {args.steps} steps (a process of its own)")
    print(f"{'whole process':44}{whole:7.2f} s")
    print(f"{'  optimize (result.json)':44}{optimize:7.2f} s")
    print(f"{'  load (result.json: layer table, weights)':44}{seconds['load']:7.2f} s")
    print(f"{'  encode (result.json)':44}{seconds['encode']:7.2f} s")
    rest = whole - optimize - seconds["load"] - seconds["encode"]
    print(f"{'  everything else (imports, start, writing)':44}{rest:7.2f} s")
    print(f"whole process / optimize: {whole / optimize:.3f}x (goal: within 1.10x)")
    print(f"\nimports: the CLI and its render command {float(cli):.2f} s, the engine (torch) {float(engine):.2f} s")
    print(f"service libraries imported by the render command: {service if service != '-' else 'none'}")
    for module, cost in heavy.items():
        print(f"{module} imported by the render: " + ("no" if cost is None else f"yes, {cost:.2f} s (goal: no)"))
    print(f"\nVGG16 weights: load_model {whole_load:.3f} s (meta build, memory-mapped .pth, tensors assigned)")
    print(
        f"  the old way's parts: build {build:.2f} s (random init; on the meta device {meta:.3f} s), torch.load "
        f"{read:.2f} s (mmap=True {mapped:.3f} s), load_state_dict {assign:.2f} s, fuse + channels-last {layout:.2f} s"
    )
    print(f"\nfilterviz layers vgg16 (cached table): {layers:.2f} s (goal: under 1 s)")


if __name__ == "__main__":
    main()
