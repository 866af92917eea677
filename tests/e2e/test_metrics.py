"""Prometheus metrics on both sides, scraped over HTTP: a real worker with its exporter port and the
real API, before and after jobs run; every number that should move moves by what the jobs did."""

import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.dispatch import Dispatcher
from core.batching import batch_key
from core.queues import RENDER_QUEUE
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.connection import connect
from filterviz.redis_server import free_port
from testkit.services import ServiceProcess, service_settings_for, settings_env, start_api, start_worker, wait_until
from tests.service_fixtures import finished, redis_db, submit, wait_for_job
from tests.webhook_receiver import webhook_receiver

FRESH = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "0-3", "steps": 5, "size": 32}
NO_WEIGHTS = {"model": "vgg16", "layer": "block1_conv1", "filters": [0], "steps": 1, "size": 32}  # fails: no VGG16
JOB_SECONDS = 300  # a shared, busy machine: a render process's first job waits for torch and the model
THROUGHPUT = {"model": "efficientnet_lite0", "device": "cpu", "precision": "fp32"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for one not exported yet (a counter whose labels were never used)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@dataclass(frozen=True)
class Stack:
    settings: Settings
    stores: Stores
    worker: ServiceProcess
    api_url: str
    worker_metrics: str  # the exporter's URL

    def scrape_worker(self) -> Samples:
        return scrape(self.worker_metrics)

    def scrape_api(self) -> Samples:
        return scrape(f"{self.api_url}/metrics")


@pytest.fixture(scope="module")
def stack(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A worker of its own (the shared one exports nothing) on a Redis database of its own, and an API."""
    root = tmp_path_factory.mktemp("metrics")
    port = free_port()
    settings = service_settings_for(redis_db(redis_server, 13), root).model_copy(
        update={"metrics_port": port, "metrics_host": "127.0.0.1", "cleanup_interval_seconds": 0.5}
    )
    connect(settings.redis_url).flushdb()
    stores = Stores.from_settings(settings)
    env = settings_env(settings, root / "torch")
    worker = start_worker(settings, env, "metrics@test", root)
    processes = [worker]
    try:
        wait_until(lambda: set(stores.catalog.models()) == set(settings.models), JOB_SECONDS, "the catalog")
        api, url = start_api(env, root / "api.log")
        processes.append(api)
        yield Stack(settings, stores, worker, url, f"http://127.0.0.1:{port}/metrics")
    finally:
        for process in processes:
            process.stop()
        connect(settings.redis_url).flushdb()


def test_jobs_move_the_workers_and_the_apis_numbers(stack: Stack) -> None:
    worker_before, api_before = stack.scrape_worker(), stack.scrape_api()
    assert value(worker_before, "filterviz_render_processes") == 1  # --concurrency 1
    assert value(worker_before, "filterviz_render_processes_busy") == 0

    with httpx.Client(base_url=stack.api_url, timeout=60) as client, webhook_receiver(statuses=[503]) as receiver:
        fresh = wait_for_job(client, submit(client, {**FRESH, "webhook": receiver.url})["id"], finished, JOB_SECONDS)
        repeat = wait_for_job(client, submit(client, FRESH)["id"], finished, JOB_SECONDS)
        failed = wait_for_job(client, submit(client, NO_WEIGHTS)["id"], finished, JOB_SECONDS)
        # started (refused once, then delivered) and succeeded: three attempts
        wait_until(lambda: len(receiver.deliveries) >= 3, 60, "the webhook deliveries")
    assert (fresh["status"], repeat["status"], repeat["device"], failed["status"]) == (
        "succeeded",
        "succeeded",
        "cache",
        "failed",
    )

    def moved(name: str, **labels: str) -> float:
        return value(worker, name, **labels) - value(worker_before, name, **labels)

    worker = wait_until(  # the webhook attempts are counted a moment after the receiver saw them
        lambda: (
            (w := stack.scrape_worker())
            and value(w, "filterviz_webhook_deliveries_total", result="delivered") >= 2
            and w
        ),
        30,
        "the worker's webhook counters",
    )
    assert moved("filterviz_jobs_finished_total", outcome="succeeded") == 2
    assert moved("filterviz_jobs_finished_total", outcome="failed") == 1
    assert moved("filterviz_jobs_finished_total", outcome="canceled") == 0
    assert moved("filterviz_job_queued_seconds_count") == 3
    assert moved("filterviz_picture_cache_misses_total") == 4  # the fresh job's four pictures
    assert moved("filterviz_picture_cache_hits_total") == 4  # ... and the repeat's, from the cache
    assert moved("filterviz_render_filter_steps_total", **THROUGHPUT) == 4 * 5  # rows x steps
    assert moved("filterviz_render_seconds_total", **THROUGHPUT) > 0
    assert moved("filterviz_batch_rows_sum") == 4 and moved("filterviz_batch_rows_count") == 1
    assert moved("filterviz_batch_jobs_sum") == 1
    assert moved("filterviz_batch_render_seconds_count") == 1
    assert moved("filterviz_webhook_deliveries_total", result="failed") == 1  # the 503
    assert moved("filterviz_webhook_deliveries_total", result="delivered") == 2
    assert moved("filterviz_webhook_deliveries_total", result="dropped") == 0
    assert value(worker, "filterviz_render_processes_busy") == 0

    api = stack.scrape_api()
    submitted = {"handler": "/v1/jobs", "method": "POST", "status": "202"}
    polled = {"handler": "/v1/jobs/{job_id}", "method": "GET", "status": "200"}
    assert (
        value(api, "filterviz_http_requests_total", **submitted)
        - value(api_before, "filterviz_http_requests_total", **submitted)
        == 3
    )
    assert value(api, "filterviz_http_request_duration_seconds_count", **submitted) == value(
        api, "filterviz_http_requests_total", **submitted
    )
    assert value(api, "filterviz_http_requests_total", **polled) >= 3
    job_ids = {fresh["id"], repeat["id"], failed["id"]}
    label_values = {label for _, sample_labels in api for _, label in sample_labels}
    assert not any(job_id in label for job_id in job_ids for label in label_values)  # route templates, never paths
    assert ("handler", "/metrics") not in {label for _, sample_labels in api for label in sample_labels}
    assert value(api, "filterviz_jobs", state="succeeded") == 2 and value(api, "filterviz_jobs", state="failed") == 1
    assert value(api, "filterviz_jobs", state="queued") == 0 and value(api, "filterviz_jobs", state="running") == 0
    assert value(api, "filterviz_workers_alive") == 1 and value(api, "filterviz_redis_up") == 1

    # the janitor's trim notes the cache's size: the fresh job's four pictures and its grid, stored once
    api = wait_until(
        lambda: (a := stack.scrape_api()) and value(a, "filterviz_picture_cache_entries") == 5 and a, 30, "a trim"
    )
    with httpx.Client(base_url=stack.api_url, timeout=60) as client:
        shown = [client.get(url).content for url in [*(r["url"] for r in fresh["results"]), fresh["grid_url"]]]
    assert value(api, "filterviz_picture_cache_bytes") == sum(map(len, shown))


def test_a_job_whose_worker_went_silent_counts_as_a_retry(stack: Stack) -> None:
    before = stack.scrape_worker()
    spec = RenderSpec(model="efficientnet_lite0", layer="blocks.1", filters=[1], steps=2, size=32)
    job_id = stack.stores.jobs.create(spec).id
    claim = stack.stores.jobs.claim(job_id, "ghost@test", 3, stack.settings.stale_after_seconds)
    assert claim.token is not None  # claimed by a "worker" that never beats: the janitor requeues it

    record = wait_until(lambda: (r := stack.stores.jobs.get(job_id)).finished and r, 30, "the requeued job to run")
    assert record.status == "succeeded" and record.attempts == 2
    after = stack.scrape_worker()
    retries = {
        reason: value(after, "filterviz_job_retries_total", reason=reason)
        - value(before, "filterviz_job_retries_total", reason=reason)
        for reason in ("worker_lost", "batch_failed")
    }
    assert retries == {"worker_lost": 1, "batch_failed": 0}


def test_a_killed_render_process_is_no_longer_counted(stack: Stack) -> None:
    parent = stack.worker.popen.pid
    (doomed,) = wait_until(lambda: len(found := render_processes(parent)) == 1 and found, 60, "one render process")
    directory = Path(re.search(r"metrics exporter on \S+ \((.+)\)", stack.worker.log())[1])
    os.kill(doomed, signal.SIGKILL)  # no hook runs: its live gauges stay in their files until the exporter sees it dead
    # the first replacement may itself be replaced (Celery kills a process not up within 4 s, as under
    # load): wait for one that counted itself, whichever pid it has
    wait_until(
        lambda: [
            pid
            for pid in render_processes(parent)
            if pid != doomed and (directory / f"gauge_livesum_{pid}.db").exists()
        ],
        JOB_SECONDS,
        "a new render process to start",
    )
    assert (directory / f"gauge_livesum_{doomed}.db").exists()

    worker = stack.scrape_worker()
    assert value(worker, "filterviz_render_processes") == 1  # not 2: the dead one was marked dead
    assert value(worker, "filterviz_render_processes_busy") == 0
    assert not (directory / f"gauge_livesum_{doomed}.db").exists()


def test_queued_work_is_shown_per_batch_key_and_per_broker_queue(stack: Stack) -> None:
    one = RenderSpec(model="efficientnet_lite0", layer="blocks.1", filters=[2], steps=2, size=32)
    other = one.model_copy(update={"steps": 3})  # another batch key: the loop differs
    # queued without a message: no worker takes them before the janitor's dispatch grace (10 s)
    jobs = [stack.stores.jobs.create(spec).id for spec in (one, one, one, other, other)]
    try:
        api = stack.scrape_api()
        assert value(api, "filterviz_jobs", state="queued") == 5
        by_key = {
            labels: count for (name, labels), count in api.items() if name == "filterviz_queued_jobs_by_batch_key"
        }
        model = ("model", "efficientnet_lite0")
        assert by_key == {
            frozenset({("batch_key", batch_key(one)), model}): 3,
            frozenset({("batch_key", batch_key(other)), model}): 2,
        }
    finally:
        for job_id in jobs:
            stack.stores.jobs.cancel(job_id)
    assert value(stack.scrape_api(), "filterviz_jobs", state="queued") == 0

    stack.worker.stop()  # nobody consumes: a message waits in the broker's list
    Dispatcher(stack.settings.redis_url).render(jobs[0])
    api = stack.scrape_api()
    assert value(api, "filterviz_queue_messages", queue=RENDER_QUEUE) == 1
    assert value(api, "filterviz_workers_alive") == 0  # it unlisted itself on the way out


def render_processes(worker: int) -> list[int]:
    """The worker's live pool processes: its children forked with its own command line (not the catalog
    publisher; not a killed one not yet reaped, whose command line is empty)."""
    found = []
    for pid in Path(f"/proc/{worker}/task/{worker}/children").read_text().split():
        try:
            if b"celery" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except FileNotFoundError:  # exited meanwhile
            pass
    return found
