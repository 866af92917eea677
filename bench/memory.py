"""Peak memory (RSS) per batch row against the activation memory the layer really needs.

    python -m bench.memory [--layer block4_conv1] [--size 128] [--rows 4 16]

Renders VGG16 with two batch sizes, each in a fresh process, sampling its resident memory every
millisecond: peak during the render minus the memory before it (model loaded, warmed up) is what
the batch costs, and the difference per extra row what one row costs. This runs with glibc's
default allocator, which hands big blocks back at once, so RSS follows live memory (a worker keeps
its peak instead: core.engine.runtime.tune_allocator). What the layer really needs per row is every
output on the way to it, which the backward uses, in the precision's bytes: the lower bound. The
engine's chunking budgets 12 bytes per such number (FILTERVIZ_MEMORY_BUDGET_MB / that = rows per chunk).
"""

import argparse
import multiprocessing
import os
import threading

from bench.engine import plant_weights_if_missing
from core.spec import RenderSpec

BYTES = {"fp32": 4, "bf16": 2}


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def render_rss_mib(spec_json: str) -> float:
    """In a fresh process: how far the resident memory rises above its level before ``spec``'s render, MiB."""
    from core.engine import render

    spec = RenderSpec.model_validate_json(spec_json)
    render(spec.model_copy(update={"steps": 1, "filters": [0]}), device="cpu")  # load and warm up
    before, peak, done = rss_mib(), [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.001):
            peak[0] = max(peak[0], rss_mib())

    sampler = threading.Thread(target=sample)
    sampler.start()
    render(spec, device="cpu")
    done.set()
    sampler.join()
    return peak[0] - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="block4_conv1")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rows", type=int, nargs=2, default=[4, 16])
    args = parser.parse_args()
    plant_weights_if_missing()
    from core.engine import check_spec
    from core.engine.layers import activation_floats
    from core.job_cost import BYTES_PER_ACTIVATION

    spawn = multiprocessing.get_context("spawn")
    print(f"\nVGG16 {args.layer}, {args.size} px, classic, 2 steps; RSS rise during the render, MiB")
    print(f"{'precision':10}{'rows':>12}{'RSS rise':>18}{'per row':>10}{'needs':>8}{'ratio':>7}{'budgeted':>10}")
    for precision in ("fp32", "bf16"):
        peaks = []
        for rows in args.rows:
            spec = RenderSpec(layer=args.layer, filters=f"0-{rows - 1}", steps=2, size=args.size, precision=precision)
            with spawn.Pool(1) as pool:
                peaks.append(pool.apply(render_rss_mib, (spec.model_dump_json(),)))
        per_row = (peaks[1] - peaks[0]) / (args.rows[1] - args.rows[0])
        floats = activation_floats("vgg16", (args.size, args.size), check_spec(spec))
        needs = floats * BYTES[precision] / 2**20
        budgeted = floats * BYTES_PER_ACTIVATION[precision] / 2**20
        print(
            f"{precision:10}{args.rows[0]:>5} / {args.rows[1]:<5}{peaks[0]:8.0f} / {peaks[1]:<6.0f}{per_row:10.1f}"
            f"{needs:8.1f}{per_row / needs:6.1f}x{budgeted:9.1f}"
        )


if __name__ == "__main__":
    main()
