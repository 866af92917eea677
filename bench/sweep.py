"""The seed's whole figure set through the service against the engine alone, in one run.

    python -m bench.sweep [--quick] [--clients 8]

The figure set: the first 20 filters of each of VGG16's 13 conv layers, classic, 20 steps, 128 px
(260 pictures). It is rendered three ways, each from a cold result cache, and timed to its last
picture:

- the engine alone: ``render_batch`` in this process, one request per layer, as a worker batches them;
- through ``filterviz serve`` (its own embedded Redis, the API, one worker) over HTTP, as one job
  (``"layers": "all-conv"``): from the POST to the job's ``finished_at``;
- the same as 260 single-filter jobs from ``--clients`` concurrent clients, each submitting its share
  and then polling it: from the first POST to the last job's ``finished_at``.

Goal: both service runs within 1.15x of the engine alone. Each side warms up first (the engine: a small
render in this process; the service: a small job, which waits for the worker's warm-up), so neither
pays a model load in its time. ``--quick`` (3 layers x 4 filters, 2 steps, 32 px, 2 clients) keeps the
script from rotting: the test suite runs it. Without VGG16's real weights a planted random state dict
is timed (same arithmetic).
"""

import argparse
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.service import serving
from core.engine import RenderRequest, list_layers, render, render_batch
from core.engine.runtime import configure_process
from core.settings import Settings
from core.spec import ALL_CONV, RenderSpec
from testkit.planted_weights import plant_vgg16_weights_if_missing

GOAL = 1.15
POLL_SECONDS = 0.2  # finished_at is the time taken; polling only notices it
JOB_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class FigureSet:
    layers: list[str]  # VGG16 conv layers; all of them is the seed's figure set
    filters: int  # the first N of each layer
    steps: int
    size: int
    all_conv: bool  # one job names its layers as "all-conv" (else one by one)

    @property
    def pictures(self) -> int:
        return len(self.layers) * self.filters

    def common(self) -> dict:
        return {"model": "vgg16", "method": "classic", "steps": self.steps, "size": self.size}

    def one_job(self, seed: int) -> dict:
        """The whole set as one request body (core.spec.RenderSpec.layers)."""
        filters = f"0-{self.filters - 1}"
        if self.all_conv:
            return {**self.common(), "layers": ALL_CONV, "filters": filters, "seed": seed}
        return {
            **self.common(),
            "layers": [{"layer": layer} for layer in self.layers],
            "filters": filters,
            "seed": seed,
        }

    def single_filter_jobs(self, seed: int) -> list[dict]:
        return [
            {**self.common(), "layer": layer, "filters": [f], "seed": seed}
            for layer in self.layers
            for f in range(self.filters)
        ]


def figure_set(quick: bool) -> FigureSet:
    conv = [layer.name for layer in list_layers("vgg16", 128) if layer.is_conv]
    if quick:
        return FigureSet(conv[::5], filters=4, steps=2, size=32, all_conv=False)
    return FigureSet(conv, filters=20, steps=20, size=128, all_conv=True)


def engine_seconds(work: FigureSet, settings: Settings) -> float:
    """The set rendered by ``render_batch`` in this process, after a warm-up render."""
    requests = [
        RenderRequest(RenderSpec(layer=layer, filters=f"0-{work.filters - 1}", **work.common()))
        for layer in work.layers
    ]
    render(requests[-1].spec.model_copy(update={"steps": 1}), device="cpu", memory_budget_mb=settings.memory_budget_mb)
    started = time.perf_counter()
    done = list(render_batch(requests, device="cpu", memory_budget_mb=settings.memory_budget_mb))
    seconds = time.perf_counter() - started
    assert sum(len(result.pictures) for _, result in done) == work.pictures, "the engine lost pictures"
    return seconds


def submit(client: httpx.Client, body: dict) -> str:
    response = client.post("/v1/jobs", json=body)
    if response.status_code != 202:
        raise RuntimeError(f"POST /v1/jobs answered {response.status_code}: {response.text}")
    return response.headers["location"]


def wait_finished(client: httpx.Client, urls: list[str]) -> list[dict]:
    """Poll the jobs until every one has ended; RuntimeError if one did not succeed.

    One job at a time, in order: the time measured is each job's own ``finished_at``, so polling only
    notices it, and a client asking after every job every round would take the cores the worker renders
    on (8 clients x 33 jobs every 0.2 s: up to 1,300 requests a second, on this machine's 2 cores).
    """
    jobs: list[dict] = []
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while len(jobs) < len(urls):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(urls) - len(jobs)} jobs unfinished after {JOB_TIMEOUT_SECONDS:.0f} s")
        while len(jobs) < len(urls):
            job = client.get(urls[len(jobs)]).json()
            if job["status"] in ("queued", "running"):
                break
            if job["status"] != "succeeded":
                raise RuntimeError(f"job {job['id']} ended {job['status']}: {job.get('error')}")
            jobs.append(job)
        time.sleep(POLL_SECONDS)
    return jobs


def seconds_to_last(started: datetime, jobs: list[dict]) -> float:
    return max((datetime.fromisoformat(job["finished_at"]) - started).total_seconds() for job in jobs)


def one_job_seconds(client: httpx.Client, work: FigureSet) -> float:
    started = datetime.now(UTC)
    (job,) = wait_finished(client, [submit(client, work.one_job(seed=1))])
    assert len(job["results"]) == work.pictures, f"one job made {len(job['results'])} pictures"
    return seconds_to_last(started, [job])


def many_jobs_seconds(client: httpx.Client, work: FigureSet, clients: int) -> float:
    """The set as single-filter jobs, dealt round robin to ``clients`` threads, each with its own connection."""
    bodies = work.single_filter_jobs(seed=2)
    shares = [bodies[number::clients] for number in range(clients)]
    finished: list[dict] = []
    errors: list[BaseException] = []

    def run(share: list[dict]) -> None:
        try:
            with httpx.Client(base_url=client.base_url, timeout=30) as own:
                finished.extend(wait_finished(own, [submit(own, body) for body in share]))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    started = datetime.now(UTC)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    assert len(finished) == work.pictures, f"{len(finished)} of {work.pictures} jobs finished"
    return seconds_to_last(started, finished)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 layers x 4 filters, 2 steps, 32 px (the tests)")
    parser.add_argument("--clients", type=int, help="concurrent clients of the single-filter jobs (8; quick: 2)")
    args = parser.parse_args(argv)
    clients = args.clients or (2 if args.quick else 8)
    configure_process()
    if plant_vgg16_weights_if_missing():  # for the worker too: it inherits TORCH_HOME
        print("VGG16 weights not found: timing a planted random state dict (same arithmetic).")
    work = figure_set(args.quick)
    settings = Settings()
    engine = engine_seconds(work, settings)
    with tempfile.TemporaryDirectory(prefix="filterviz-sweep-") as root:
        env = {
            "FILTERVIZ_MODELS": '["vgg16"]',
            "FILTERVIZ_DEVICE": "cpu",
            "FILTERVIZ_MAX_FILTERS": str(max(work.pictures, settings.max_filters)),  # 260 pictures in one job
            "FILTERVIZ_JOB_SOFT_TIME_LIMIT": str(JOB_TIMEOUT_SECONDS),  # a busy machine's figure set may take long
            "FILTERVIZ_JOB_TIME_LIMIT": str(JOB_TIMEOUT_SECONDS + 60),
        }
        with serving(Path(root), env) as client:
            warm_up = time.perf_counter()
            wait_finished(client, [submit(client, {**work.common(), "layer": work.layers[0], "filters": [0]})])
            warm_up = time.perf_counter() - warm_up
            one = one_job_seconds(client, work)
            many = many_jobs_seconds(client, work, clients)

    print(
        f"\nVGG16 figure set: {len(work.layers)} conv layers x {work.filters} filters = {work.pictures} pictures, "
        f"classic, {work.steps} steps, {work.size} px, CPU"
    )
    print(f"service warm-up job (waits for the worker's own warm-up): {warm_up:.1f} s")
    print(f"\n{'time to the last picture':52}{'s':>8}{'vs engine':>11}")
    print(f"{'engine alone (render_batch in this process)':52}{engine:8.1f}")
    for label, seconds in (
        ("service: one job (layers " + ("all-conv" if work.all_conv else "listed") + ")", one),
        (f"service: {work.pictures} single-filter jobs, {clients} clients", many),
    ):
        print(f"{label:52}{seconds:8.1f}{seconds / engine:10.2f}x  {'ok' if seconds / engine <= GOAL else 'over'}")
    print(f"goal: within {GOAL}x of the engine alone")


if __name__ == "__main__":
    main()
