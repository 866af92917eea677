"""Object storage against the local directory, through the real service, side by side in one run.

    python -m bench.storage [--jobs 20] [--requests 200]

Starts redis-server, an S3-compatible server (moto's, on loopback, in this process), and for each
backend one worker and the API (as the tests do). Measures, over HTTP:

1. a small job end to end (POST until the client sees ``succeeded``), one at a time, each with a seed
   of its own (every job renders and stores its pictures): the local directory against the bucket;
2. serving one stored picture from the bucket: streamed by the API, or a 307 to a presigned URL
   (the API's answer alone, and the redirect followed to the bytes), by a second API on the same
   Redis and bucket with FILTERVIZ_PICTURE_DELIVERY=redirect.
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from bench.service import SMALL_JOB
from core.settings import Settings
from filterviz.redis_server import embedded_redis
from testkit.services import on_s3, s3_endpoint, settings_env, start_api, start_worker, wait_until

POLL_SECONDS = 0.005


def settings_for(redis_url: str, root: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        storage_dir=root / "results",
        upload_dir=root / "uploads",
        cache_dir=root / "cache",
        models=["efficientnet_lite0"],
        device="cpu",
    )


@contextmanager
def service(settings: Settings, root: Path, name: str) -> Iterator[str]:
    """One worker and the API with ``settings``; yields the API's URL once the catalog is published."""
    root.mkdir(parents=True)
    env = settings_env(settings, root / "torch")
    with ExitStack() as stack:
        worker = start_worker(settings, env, f"{name}@bench", root)
        stack.callback(worker.stop)
        api, url = start_api(env, root / "api.log")
        stack.callback(api.stop)
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, 120, "the API to be ready")
        yield url


def job_seconds(client: httpx.Client, seed: int) -> tuple[float, dict]:
    started = time.perf_counter()
    submitted = client.post("/v1/jobs", json={**SMALL_JOB, "seed": seed})
    submitted.raise_for_status()
    while (job := client.get(submitted.headers["location"]).json())["status"] in ("queued", "running"):
        time.sleep(POLL_SECONDS)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job ended {job['status']}: {job['error']}")
    return time.perf_counter() - started, job


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def request_ms(requests: int, ask: Callable[[], None]) -> tuple[float, float]:
    """Median and p95 of ``ask``, in ms."""
    ask()  # the connection opened, the picture once read
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        ask()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), p95(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    ended: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="filterviz-storage-") as directory, ExitStack() as stack:
        root = Path(directory)
        redis_url = stack.enter_context(embedded_redis())
        s3_url = stack.enter_context(s3_endpoint())
        backends = {
            "local directory": settings_for(f"{redis_url.rsplit('/', 1)[0]}/0", root / "local"),
            "S3 (moto)": on_s3(settings_for(f"{redis_url.rsplit('/', 1)[0]}/1", root / "s3"), s3_url, "bench"),
        }
        for label, settings in backends.items():
            with service(settings, root / label.split()[0].lower(), label.split()[0].lower()) as url:
                with httpx.Client(base_url=url, timeout=60) as client:
                    job_seconds(client, seed=10_000)  # the worker's warm-up
                    runs = [job_seconds(client, seed) for seed in range(args.jobs)]
                    ended[label] = [seconds for seconds, _ in runs]
                    if label.startswith("S3"):
                        grid = runs[-1][1]["grid_url"]
                        serving = serving_costs(client, settings, root / "redirecting", grid, args.requests)

    print(f"small job: {SMALL_JOB} (EfficientNet-Lite0 on the CPU), {args.jobs} jobs one at a time per backend")
    print(f"{'end to end, POST to seen done':40}{'median ms':>12}{'p95 ms':>10}")
    for label, times in ended.items():
        print(f"  {label:38}{statistics.median(times) * 1000:12.0f}{p95(times) * 1000:10.0f}")
    print(f"\none picture from the bucket, {args.requests} requests one at a time")
    print(f"{'':40}{'median ms':>12}{'p95 ms':>10}")
    for label, (median, tail) in serving.items():
        print(f"  {label:38}{median:12.2f}{tail:10.2f}")


def serving_costs(
    streaming: httpx.Client, settings: Settings, root: Path, grid: str, requests: int
) -> dict[str, tuple[float, float]]:
    """Per-request cost of the picture at ``grid``: streamed, and as a redirect (answer alone / followed)."""
    redirecting = settings.model_copy(update={"picture_delivery": "redirect"})
    root.mkdir(parents=True)
    api, url = start_api(settings_env(redirecting, root / "torch"), root / "api.log")
    try:
        with httpx.Client(base_url=url, timeout=60) as client, httpx.Client(timeout=60) as bucket:
            size = len(streaming.get(grid).content)
            location = client.get(grid).headers["location"]
            return {
                f"streamed by the API ({size} B)": request_ms(requests, lambda: _ok(streaming.get(grid), 200)),
                "redirect: the API's 307 alone": request_ms(requests, lambda: _ok(client.get(grid), 307)),
                "redirect followed to the bytes": request_ms(
                    requests, lambda: _ok(bucket.get(_ok(client.get(grid), 307).headers["location"]), 200)
                ),
                "presigned URL alone (from the bucket)": request_ms(requests, lambda: _ok(bucket.get(location), 200)),
            }
    finally:
        api.stop()


def _ok(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:200]}")
    return response


if __name__ == "__main__":
    main()
