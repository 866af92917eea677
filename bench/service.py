"""End-to-end latency of a small job through the real service, and where the time goes.

    python -m bench.service [--jobs 8]

Starts `filterviz serve` (embedded Redis, the API, one worker) on a free port, submits small
EfficientNet-Lite0 jobs one at a time over HTTP and polls each to the end. The worker's own
timings (load + optimize + encode) are the rendering; the rest — HTTP, validation, the queue,
the claim, storing PNGs, polling — is the service's overhead.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx

from core.settings import Settings
from filterviz.redis_server import free_port

SMALL_JOB = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "0-3", "steps": 10, "size": 64}
POLL_SECONDS = 0.01
READY_TIMEOUT_SECONDS = 300.0  # a busy machine starts slowly
RENDER_PHASES = ("load", "optimize", "encode")  # the engine's own timers in a job's "seconds"


def wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("filterviz serve did not become ready")


def run_job(client: httpx.Client, seed: int) -> dict[str, float]:
    started = time.perf_counter()
    submitted = client.post("/v1/jobs", json={**SMALL_JOB, "seed": seed})
    post_seconds = time.perf_counter() - started
    submitted.raise_for_status()
    url = submitted.headers["location"]
    while (job := client.get(url).json())["status"] in ("queued", "running"):
        time.sleep(POLL_SECONDS)
    total = time.perf_counter() - started
    if job["status"] != "succeeded":
        raise RuntimeError(f"job ended {job['status']}: {job['error']}")
    created, begun = (datetime.fromisoformat(job[k]) for k in ("created_at", "started_at"))
    rendering = sum(job["seconds"].get(phase, 0.0) for phase in RENDER_PHASES)  # "store" is overhead
    return {
        "total": total,
        "post": post_seconds,
        "queue": (begun - created).total_seconds(),
        "render": rendering,
        "overhead": total - rendering,
    }


@contextmanager
def serving(root: Path, env: dict[str, str]) -> Iterator[httpx.Client]:
    """`filterviz serve` (its own embedded Redis, the API on a free port, one worker) keeping its files under
    ``root``, with ``env`` over this process's environment; yields a client of its API once it is ready."""
    port = free_port()
    env = {
        **os.environ,
        "FILTERVIZ_STORAGE_DIR": f"{root}/results",
        "FILTERVIZ_UPLOAD_DIR": f"{root}/uploads",
        "FILTERVIZ_CACHE_DIR": f"{root}/cache",  # a cold cache: every job renders
        **env,
    }
    env.pop("FILTERVIZ_REDIS_URL", None)
    env.pop("REDIS_URL", None)
    serve = subprocess.Popen(
        [sys.executable, "-m", "filterviz", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_ready(client)
            yield client
    finally:
        serve.terminate()
        serve.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="filterviz-bench-") as root:
        env = {"FILTERVIZ_MODELS": '["efficientnet_lite0"]', "FILTERVIZ_DEVICE": "cpu"}
        with serving(Path(root), env) as client:
            first = run_job(client, seed=10_000)  # waits for the worker's warm-up
            runs = [run_job(client, seed) for seed in range(args.jobs)]

    print(f"small job: {SMALL_JOB} (EfficientNet-Lite0 on the CPU), {args.jobs} jobs one at a time")
    print(f"first job (waits for the worker's warm-up): {first['total'] * 1000:.0f} ms")
    wait = Settings().batch_wait_seconds
    print(
        f"batch wait window: {wait * 1000:.0f} ms (FILTERVIZ_BATCH_WAIT_SECONDS): a job alone waits that long "
        f"for batch-mates, inside 'everything else'\n"
    )
    print(f"{'median of the rest':40}{'ms':>8}{'share':>8}")
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    for key, label in (
        ("total", "end to end (POST to seen done)"),
        ("render", "  rendering (worker's timer)"),
        ("overhead", "  everything else"),
        ("queue", "    of which queued (created->started)"),
        ("post", "    of which POST /v1/jobs"),
    ):
        print(f"{label:40}{median[key] * 1000:8.0f}{median[key] / median['total']:8.0%}")


if __name__ == "__main__":
    main()
