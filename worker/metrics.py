"""A worker's Prometheus metrics: their definitions, the one-line helpers the worker's code records
with, and the exporter that serves them (FILTERVIZ_METRICS_PORT).

Celery forks its render processes from the worker's parent, and both record (the parent: janitor and
webhooks; each pool process: its jobs), so the values live in prometheus_client's multiprocess mode:
every process writes its own files in ``PROMETHEUS_MULTIPROC_DIR`` and the exporter, a thread of the
parent, adds them up at each scrape. The directory is the environment's when set (it must be this
worker's alone; its old files are removed at start), else a private temporary one made at start and
removed at exit. Without the port nothing is defined and every helper does nothing (in-process tests,
``filterviz render``). Labels stay bounded: outcomes and reasons are fixed sets, and model, device and
precision are what the deployment serves, never a job id.
"""

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from wsgiref.simple_server import WSGIServer

from celery.signals import task_postrun, task_prerun, worker_process_init, worker_ready, worker_shutdown
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from core.settings import Settings
from core.spec import RenderSpec

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
Outcome = Literal["succeeded", "failed", "canceled"]
RetryReason = Literal["worker_lost", "batch_failed"]
WebhookResult = Literal["delivered", "gone", "failed", "dropped", "refused"]

QUEUED_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
RENDER_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200)
JOB_COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
ROW_COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Definitions:
    """Every worker metric. Made once the values are kept in files, so each process writes its own."""

    def __init__(self) -> None:
        throughput = ["model", "device", "precision"]
        self.jobs_finished = Counter(
            "filterviz_jobs_finished", "Jobs this worker ended, by outcome.", ["outcome"], registry=None
        )
        self.job_retries = Counter(
            "filterviz_job_retries",
            "Running jobs queued again: their worker went silent (the janitor requeued them), or their batch failed.",
            ["reason"],
            registry=None,
        )
        self.queued_seconds = Histogram(
            "filterviz_job_queued_seconds",
            "Submit to claim, per job (Redis's clock).",
            buckets=QUEUED_BUCKETS,
            registry=None,
        )
        self.batch_render_seconds = Histogram(
            "filterviz_batch_render_seconds",
            "Time the engine rendered one batch.",
            buckets=RENDER_BUCKETS,
            registry=None,
        )
        self.render_seconds = Counter(
            "filterviz_render_seconds", "Seconds spent rendering batches.", throughput, registry=None
        )
        self.filter_steps = Counter(
            "filterviz_render_filter_steps",
            "Optimization steps of rendered pictures (rows x steps): rate() is filter-steps/s.",
            throughput,
            registry=None,
        )
        self.batch_jobs = Histogram(
            "filterviz_batch_jobs", "Jobs per rendered batch.", buckets=JOB_COUNT_BUCKETS, registry=None
        )
        self.batch_rows = Histogram(
            "filterviz_batch_rows", "Rows (pictures) rendered per batch.", buckets=ROW_COUNT_BUCKETS, registry=None
        )
        self.cache_hits = Counter(
            "filterviz_picture_cache_hits",
            "Pictures of succeeded jobs taken from the result cache (or a batch-mate's rows).",
            registry=None,
        )
        self.cache_misses = Counter(
            "filterviz_picture_cache_misses", "Pictures of succeeded jobs that were rendered for them.", registry=None
        )
        self.webhook_deliveries = Counter(
            "filterviz_webhook_deliveries",
            "Webhook delivery attempts, by result (failed: retried later; dropped: no retry left; "
            "refused: a target webhooks may not go to).",
            ["result"],
            registry=None,
        )
        self.processes = Gauge(
            "filterviz_render_processes", "Render processes running.", registry=None, multiprocess_mode="livesum"
        )
        self.busy = Gauge(
            "filterviz_render_processes_busy",
            "Render processes running a task now.",
            registry=None,
            multiprocess_mode="livesum",
        )
        for outcome in Outcome.__args__:  # type: ignore[attr-defined]
            self.jobs_finished.labels(outcome)
        for reason in RetryReason.__args__:  # type: ignore[attr-defined]
            self.job_retries.labels(reason)
        for result in WebhookResult.__args__:  # type: ignore[attr-defined]
            self.webhook_deliveries.labels(result)


_defined: Definitions | None = None  # set by install_exporter in the parent, inherited by the pool


# -- the recording helpers: one call at each place something happens ---------------------------------


def job_claimed(queued_seconds: float) -> None:
    if _defined is not None:
        _defined.queued_seconds.observe(queued_seconds)


def job_finished(outcome: Outcome) -> None:
    if _defined is not None:
        _defined.jobs_finished.labels(outcome).inc()


def claim_refused(outcome: str) -> None:
    """A claim the job store answered without a job: ``exhausted`` means it failed the job (WorkerLost)."""
    if outcome == "exhausted":
        job_finished("failed")


def job_retried(reason: RetryReason) -> None:
    if _defined is not None:
        _defined.job_retries.labels(reason).inc()


def batch_started(jobs: int, rows: int) -> None:
    if _defined is not None:
        _defined.batch_jobs.observe(jobs)
        _defined.batch_rows.observe(rows)


def batch_rendered(requests: Sequence[tuple[RenderSpec, int]], device: str, seconds: float) -> None:
    """A batch rendered in ``seconds``: its finished requests with their rows (model and precision are
    the first one's: a batch shares them; a batch whose every request was stopped counts no throughput)."""
    if _defined is None:
        return
    _defined.batch_render_seconds.observe(seconds)
    if requests:
        first = requests[0][0]
        labels = (first.model, device, first.precision)
        _defined.render_seconds.labels(*labels).inc(seconds)
        _defined.filter_steps.labels(*labels).inc(sum(rows * (spec.steps or 0) for spec, rows in requests))


def pictures_served(cached: int, rendered: int) -> None:
    if _defined is not None:
        _defined.cache_hits.inc(cached)
        _defined.cache_misses.inc(rendered)


def webhook_attempted(result: WebhookResult) -> None:
    if _defined is not None:
        _defined.webhook_deliveries.labels(result).inc()


# -- the exporter -------------------------------------------------------------------------------------


class _DeadProcesses(Collector):
    """Before each scrape, retire the live gauges of pool processes that died (a SIGKILL runs no hook)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def collect(self) -> Iterator:
        for pid in _pids_with_live_gauges(self._directory):
            if not _alive(pid):
                mark_process_dead(pid, str(self._directory))
        return iter(())


@dataclass
class _Exporter:
    settings: Settings
    directory: Path
    owned: bool  # made here, so removed at exit
    server: WSGIServer | None = None

    def serve(self, **_: object) -> None:
        """worker_ready (parent, after the pool forked: no pool process inherits the socket)."""
        registry = CollectorRegistry()
        registry.register(_DeadProcesses(self.directory))
        MultiProcessCollector(registry, path=str(self.directory))
        port = self.settings.metrics_port
        assert port is not None  # installed only with a port
        self.server, _thread = start_http_server(port, self.settings.metrics_host, registry=registry)
        log.info("metrics exporter on %s:%d (%s)", self.settings.metrics_host, port, self.directory)

    def close(self, **_: object) -> None:
        """worker_shutdown (parent)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.owned:
            shutil.rmtree(self.directory, ignore_errors=True)


def install_exporter(settings: Settings) -> None:
    """With FILTERVIZ_METRICS_PORT: keep metrics in files from now on, count render processes and busy ones,
    and serve them from the parent once the worker is ready (called by the app factory, in the parent)."""
    global _defined
    if settings.metrics_port is None:
        return
    directory, owned = _multiprocess_directory()
    os.environ[MULTIPROC_ENV] = str(directory)  # the pool processes inherit it
    # prometheus_client chose how values are kept when it was imported, before this directory existed:
    # choose again, as it does itself at import, so every metric made below writes to the files.
    values.ValueClass = values.get_value_class()
    _defined = definitions = Definitions()
    exporter = _Exporter(settings, directory, owned)
    worker_ready.connect(exporter.serve, weak=False)
    worker_shutdown.connect(exporter.close, weak=False)
    worker_process_init.connect(lambda **_: definitions.processes.inc(), weak=False)
    task_prerun.connect(lambda **_: definitions.busy.inc(), weak=False)
    task_postrun.connect(lambda **_: definitions.busy.dec(), weak=False)


def _multiprocess_directory() -> tuple[Path, bool]:
    """The environment's directory, emptied of an earlier run's files; else a new private one (owned)."""
    given = os.environ.get(MULTIPROC_ENV)
    if not given:
        return Path(tempfile.mkdtemp(prefix="filterviz-metrics-")), True
    directory = Path(given)
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.db"):
        old.unlink()
    return directory, False


def _pids_with_live_gauges(directory: Path) -> Iterable[int]:
    """Processes with live gauge files: ``gauge_livesum_<pid>.db`` and the like."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[1]
        if pid.isdigit():
            yield int(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        return True
    return True
