"""Cross-request batching and the result cache through the real service, side by side in one run.

    python -m bench.batching [--jobs 64] [--layer block4_conv1] [--size 128] [--steps 20] [--precision bf16]

Starts redis-server, the API and one worker (as the tests do; VGG16 weights planted when the real
ones are missing) and measures, over HTTP:

1. one job of N filters;
2. N single-filter jobs submitted at once, from 8 client threads: the worker batches them;
3. the same N single-filter jobs with batching off (a worker with FILTERVIZ_BATCH_MAX_ROWS=1);
4. repeated requests, answered from the result cache: POST until the client sees ``succeeded``.

Phases 1-3 use seeds of their own, so no picture comes from the cache by accident; their times run
from the first job's creation to the last one's end, on the job store's clock.
"""

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import torch

from bench.engine import plant_weights_if_missing
from core.engine.runtime import usable_cores
from core.jobs import JobRecord
from core.settings import Settings
from core.store import Stores
from filterviz.redis_server import embedded_redis
from testkit.services import ServiceProcess, settings_env, start_api, start_worker, wait_until

CLIENT_THREADS = 8
POLL_SECONDS = 0.002


class Service:
    """redis-server, one worker and the API, with ``settings``; the worker can be restarted with changes."""

    def __init__(self, settings: Settings, root: Path) -> None:
        self.settings, self.root = settings, root
        self.stores = Stores.from_settings(settings)
        self.worker: ServiceProcess | None = None
        self.api, self.url = start_api(self.env(settings), root / "api.log")

    def env(self, settings: Settings) -> dict[str, str]:
        return settings_env(settings, Path(torch.hub.get_dir()).parent)

    def start_worker(self, name: str, **changes: object) -> None:
        self.stop_worker()
        settings = self.settings.model_copy(update=changes)
        self.worker = start_worker(settings, self.env(settings), name, self.root)
        wait_until(lambda: self.stores.catalog.models(), 90, "the catalog")

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def stop(self) -> None:
        self.stop_worker()
        self.api.stop()


def submit_all(client: httpx.Client, specs: list[dict]) -> list[str]:
    def post(spec: dict) -> str:
        response = client.post("/v1/jobs", json=spec)
        response.raise_for_status()
        return response.json()["id"]

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        return list(pool.map(post, specs))


def wait_all(stores: Stores, ids: list[str]) -> list[JobRecord]:
    while True:
        records = [stores.jobs.get(job_id) for job_id in ids]
        if all(record.finished for record in records):
            failed = [record.error for record in records if record.status != "succeeded"]
            if failed:
                raise RuntimeError(f"{len(failed)} jobs did not succeed, e.g. {failed[0]}")
            return records
        time.sleep(0.1)


def span(records: list[JobRecord]) -> float:
    """First creation to last end, on the job store's clock."""
    return (max(r.finished_at for r in records) - min(r.created_at for r in records)).total_seconds()


def run_phase(service: Service, client: httpx.Client, specs: list[dict]) -> float:
    return span(wait_all(service.stores, submit_all(client, specs)))


def cached_latency(client: httpx.Client, spec: dict) -> float:
    """POST to the client seeing ``succeeded``, for a request whose pictures are all in the cache."""
    started = time.perf_counter()
    url = client.post("/v1/jobs", json=spec).headers["location"]
    while (job := client.get(url).json())["status"] != "succeeded":
        if job["status"] in ("failed", "canceled"):
            raise RuntimeError(f"cached job ended {job['status']}")
        time.sleep(POLL_SECONDS)
    assert job["device"] == "cache", job
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=64)
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--layer", default="block4_conv1")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precision", default="bf16")
    args = parser.parse_args()
    plant_weights_if_missing()
    job = {name: getattr(args, name) for name in ("model", "layer", "size", "steps", "precision")}
    singles = lambda seed: [{**job, "filters": [f], "seed": seed} for f in range(args.jobs)]  # noqa: E731

    with tempfile.TemporaryDirectory(prefix="filterviz-bench-") as directory, embedded_redis() as redis_url:
        root = Path(directory)
        settings = Settings(
            redis_url=redis_url,
            storage_dir=root / "results",
            upload_dir=root / "uploads",
            cache_dir=root / "cache",
            models=[args.model],
            device="cpu",
            max_filters=max(256, args.jobs),
        )
        service = Service(settings, root)
        try:
            service.start_worker("batching@bench")
            with httpx.Client(base_url=service.url, timeout=60) as client:
                run_phase(service, client, [{**job, "filters": [0], "steps": 1, "seed": 99}])  # loads the model
                one_job = run_phase(service, client, [{**job, "filters": f"0-{args.jobs - 1}", "seed": 1}])
                before = service.stores.render_stats.read()
                batched = run_phase(service, client, singles(2))
                stats = service.stores.render_stats.read()
                cached = [cached_latency(client, spec) for spec in singles(2)[:20]]
                cached_whole = cached_latency(client, {**job, "filters": f"0-{args.jobs - 1}", "seed": 1})
                service.start_worker("unbatched@bench", batch_max_rows=1)
                unbatched = run_phase(service, client, singles(3))
        finally:
            service.stop()

    batches = stats.batches - before.batches
    jobs_per_batch = (stats.batch_jobs - before.batch_jobs) / batches
    queue = (stats.queue_seconds - before.queue_seconds) / (stats.batch_jobs - before.batch_jobs)
    print(
        f"\n{args.model} {args.layer}, {args.size} px, {args.steps} steps, {args.precision}, "
        f"one worker on {usable_cores()} cores, {CLIENT_THREADS} client threads"
    )
    print(f"{'one job of ' + str(args.jobs) + ' filters':48}{one_job:8.1f} s")
    print(
        f"{str(args.jobs) + ' single-filter jobs at once, batched':48}{batched:8.1f} s"
        f"{batched / one_job:8.2f}x the one job (goal <= 1.3x)"
    )
    print(f"{'  batches, jobs per batch, queue delay':48}{batches:8d}{jobs_per_batch:9.1f}{queue:9.2f} s")
    print(
        f"{str(args.jobs) + ' single-filter jobs, batching off':48}{unbatched:8.1f} s"
        f"{unbatched / batched:8.2f}x the batched ones"
    )
    print(
        f"{'repeated single-filter request, from the cache':48}{statistics.median(cached) * 1000:8.1f} ms median, "
        f"{max(cached) * 1000:.1f} ms max of {len(cached)} (goal < 50 ms)"
    )
    print(f"{'repeated ' + str(args.jobs) + '-filter request, from the cache':48}{cached_whole * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
