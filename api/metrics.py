"""``GET /metrics``: the API's Prometheus metrics (FILTERVIZ_API_METRICS, on by default).

Two kinds. HTTP requests, counted and timed by prometheus-fastapi-instrumentator's middleware, labelled
by route template (``/v1/jobs/{job_id}``, never the path a request named: no job id becomes a label;
a path no route matches is ``none``), method and status. And the service's state, read from Redis at
each scrape by :class:`ServiceState` with a bounded number of calls in eight round trips (no scan):
jobs per state, messages per broker queue, queued jobs per batch key, live workers, and the result
cache's size as the workers' last trim measured it. Every metric is kept in a registry of this app's
own (tests make many apps in one process; the workers' multiprocess files are never read here).

The route is open like /healthz (no API key, no rate limit: those guard /v1), and not in the OpenAPI
document: it is Prometheus's text format, not part of the API clients are generated from.
"""

from collections import Counter
from collections.abc import Iterator

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator import metrics as http_metrics
from redis import Redis, RedisError

from api.access import caller_id
from core.batching import batch_key
from core.queues import META_QUEUE, RENDER_QUEUE
from core.settings import Settings
from core.store import Stores
from core.store.connection import connect, redis_url

METRICS_PATH = "/metrics"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_KEY_SAMPLE = 200  # queued jobs read per scrape to find the batch keys waiting: exact up to this many
BATCH_KEY_SERIES = 10  # batch keys shown, the largest; the rest add up under batch_key="other"


def install_metrics(app: FastAPI, settings: Settings, stores: Stores) -> None:
    """Count and time every request but the scrapes, and serve the metrics at /metrics (unless turned off)."""
    if not settings.api_metrics:
        return
    registry = CollectorRegistry()
    Instrumentator(
        should_group_status_codes=False,  # 404, 422, 429, 503 each mean something else
        should_exclude_streaming_duration=True,  # an event stream is timed to its first byte, not its end
        excluded_handlers=[f"^{METRICS_PATH}$"],
        registry=registry,
    ).add(
        http_metrics.requests(
            "filterviz_http_requests_total", "HTTP requests, by route template, method and status.", registry=registry
        ),
        http_metrics.latency(
            "filterviz_http_request_duration_seconds",
            "Time to answer an HTTP request (an event stream: to its first byte), by route template, method, status.",
            should_exclude_streaming_duration=True,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
    ).instrument(app)
    registry.register(ServiceState(settings, stores, connect(redis_url(settings))))

    # not Instrumentator.expose(): where PROMETHEUS_MULTIPROC_DIR is set (a worker's, say) it serves that
    # directory's files instead of this registry
    def metrics() -> Response:
        """Prometheus's text format (a thread of the pool: the collector's Redis calls block)."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)


class ServiceState(Collector):
    """The service's state in Redis, as gauges made at each scrape (``filterviz_redis_up`` 0 when Redis is out)."""

    def __init__(self, settings: Settings, stores: Stores, broker: Redis) -> None:
        self._settings, self._stores, self._broker = settings, stores, broker
        # the callers whose status indexes there are: anonymous (None), and one per configured API key
        self._callers = [None, *(caller_id(digest) for digest in settings.api_keys)]

    def collect(self) -> Iterator[Metric]:
        try:
            found = [*self._jobs(), self._queues(), self._batch_keys(), self._workers(), *self._cache()]
        except RedisError:  # the request metrics are still worth a scrape
            found = []
        yield GaugeMetricFamily(
            "filterviz_redis_up", "1 if the API could read Redis at this scrape, else 0.", int(bool(found))
        )
        yield from found

    def _jobs(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "filterviz_jobs",
            "Jobs in each state, within the retention (the job store's status indexes).",
            labels=["state"],
        )
        for state, count in self._stores.jobs.count_by_status(self._callers).items():
            jobs.add_metric([state], count)
        yield jobs

    def _queues(self) -> Metric:
        queues = GaugeMetricFamily(
            "filterviz_queue_messages",
            "Celery messages waiting in each broker queue (a Redis list each).",
            labels=["queue"],
        )
        pipe = self._broker.pipeline(transaction=False)
        for queue in (RENDER_QUEUE, META_QUEUE):
            pipe.llen(queue)
        for queue, length in zip((RENDER_QUEUE, META_QUEUE), pipe.execute(), strict=True):
            queues.add_metric([queue], length)
        return queues

    def _batch_keys(self) -> Metric:
        """Queued jobs per batch key, from a random sample of at most BATCH_KEY_SAMPLE queued jobs (scaled up
        to the whole queue when it is longer): the largest BATCH_KEY_SERIES keys, and ``other``."""
        family = GaugeMetricFamily(
            "filterviz_queued_jobs_by_batch_key",
            "Queued jobs per batch key (jobs that may share a batch), with the key's model; estimated from a sample "
            f"of {BATCH_KEY_SAMPLE} when more are queued.",
            labels=["batch_key", "model"],
        )
        queued, sample = self._stores.jobs.queued_sample(BATCH_KEY_SAMPLE)
        keys = Counter((batch_key(spec), spec.model) for spec in sample)
        scale = queued / len(sample) if sample else 0.0
        ranked = keys.most_common()
        for (key, model), count in ranked[:BATCH_KEY_SERIES]:
            family.add_metric([key, model], round(count * scale))
        rest = sum(count for _, count in ranked[BATCH_KEY_SERIES:])
        if rest:
            family.add_metric(["other", ""], round(rest * scale))
        return family

    def _workers(self) -> Metric:
        alive = self._stores.workers.alive(self._settings.stale_after_seconds)
        return GaugeMetricFamily(
            "filterviz_workers_alive",
            "Workers whose janitor stamped them alive within the stale-after time.",
            len(alive),
        )

    def _cache(self) -> Iterator[Metric]:
        stats = self._stores.render_stats.read()
        yield GaugeMetricFamily(
            "filterviz_picture_cache_entries",
            "Result cache entries, as the workers' last trim left them.",
            stats.cache_entries,
        )
        yield GaugeMetricFamily(
            "filterviz_picture_cache_bytes",
            "Bytes of stored pictures kept (what FILTERVIZ_CACHE_MAX_BYTES bounds), as the last trim measured them.",
            stats.cache_bytes,
        )
