"""The benchmarks that the lead runs in full, run here shrunk (--quick), as processes, so they cannot rot.

Their numbers are not checked (the machine is shared): only that each runs to the end and prints them.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH_TIMEOUT_SECONDS = 900


def run_bench(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=BENCH_TIMEOUT_SECONDS)
    print(done.stdout[-4000:], done.stderr[-4000:])
    return done


def test_the_figure_set_sweep_runs_through_the_service_and_the_engine(vgg16_home: Path):
    done = run_bench("bench.sweep", "--quick")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "3 conv layers x 4 filters = 12 pictures" in out
    assert "engine alone (render_batch in this process)" in out
    for line in ("service: one job (layers listed)", "service: 12 single-filter jobs, 2 clients"):
        (row,) = [row for row in out.splitlines() if row.startswith(line)]
        assert row.rstrip().endswith(("ok", "over")), row  # a ratio against the engine was printed


def test_the_gpu_script_dry_runs_on_the_cpu(vgg16_home: Path):
    done = run_bench("bench.gpu", "--device", "cpu", "--quick")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for section in ("1. device", "2. every model", "3. GPU choices", "4. the VGG16 sweep", "5. one job"):
        assert f"--- {section}" in out
    compared = [line for line in out.splitlines() if line.startswith("efficientnet_lite0")]
    assert len(compared) in (2, 4) and all(line.endswith("match") for line in compared), out  # bf16 where the CPU can
    assert "sweep 4 filters classic fp32" in out and "figure set robust fp32" in out
    assert "first (waits for the worker's warm-up) job" in out and "second job" in out
    assert "all checks passed" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with a GPU: the real run is its business")
def test_the_gpu_script_without_a_gpu_says_so_and_fails_nothing():
    done = run_bench("bench.gpu", "--device", "cuda")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "could not: no CUDA device here" in done.stdout


def test_the_startup_split_runs_and_the_render_imports_no_torchvision(vgg16_home: Path):
    done = run_bench("bench.startup", "--filters", "2", "--steps", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "whole process / optimize:" in out and "filterviz layers vgg16 (cached table):" in out
    assert "torchvision imported by the render: no" in out
    assert "sympy imported by the render: no" in out


def test_the_quality_bench_scores_every_method_against_the_reference(tmp_path: Path):
    shrunk = ("--quick", "--size", "64", "--reference-steps", "16", "--robust-steps", "8", "--grids", str(tmp_path))
    done = run_bench("bench.quality", *shrunk)
    assert done.returncode == 0, done.stdout + done.stderr
    methods = ("classic", "robust (default)", "robust", "classic (equal time)", "maco (default)", "lucid-style")
    rows = [line for line in done.stdout.splitlines() if line.startswith(methods)]
    assert [row.split()[0] for row in rows] == ["classic", "robust", "robust", "classic", "maco", "lucid-style"]
    for row in rows:
        *_, versus_reference, versus_time, dead = row.split()
        assert all(value.endswith("%") for value in (versus_reference, versus_time, dead)), row
    assert rows[-1].split()[-3] == "100%", "the reference is its own yardstick"
    assert len(list(tmp_path.glob("efficientnet_lite0-blocks.3-*.png"))) == len(rows)


def test_the_folding_bench_times_both_ways_for_each_model():
    done = run_bench("bench.folding", "--filters", "2", "--steps", "2", "--size", "64", "--rounds", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(("efficientnet_lite0", "resnet50"))]
    assert [row[:2] for row in rows] == [
        ["efficientnet_lite0", "blocks.3"],
        ["efficientnet_lite0", "blocks.5"],
        ["resnet50", "layer3"],
    ]
    assert all(float(row[2]) > 0 and float(row[3]) > 0 and row[4].endswith("x") for row in rows)
