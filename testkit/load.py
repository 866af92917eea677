"""The load runner: many closed-loop clients submitting and polling jobs at once, every wait bounded.

Each client loops: POST /v1/jobs a job (a new seed each time, so each is rendered, not served
from a cache), poll GET /v1/jobs/{id} until it has finished, again, until the time is up; then
every job still unfinished is polled until it finishes (the drain). The report holds both routes'
latencies, the statuses seen, and the jobs accepted, finished and lost (accepted, then not found
or never finished).
"""

import asyncio
import itertools
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

SUBMIT, POLL = "POST /v1/jobs", "GET /v1/jobs/{id}"
TINY_JOB = {"model": "efficientnet_lite0", "layer": "blocks.0", "filters": [0], "steps": 1, "size": 16}
FINAL = ("succeeded", "failed", "canceled")
MAX_BACKOFF_SECONDS = 5.0  # a client told to Retry-After waits at most this long


@dataclass
class LoadReport:
    clients: int
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: {SUBMIT: [], POLL: []})
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    seeds: itertools.count = field(default_factory=itertools.count)
    accepted: set[str] = field(default_factory=set)
    finished: dict[str, str] = field(default_factory=dict)  # job id -> final status
    missing: set[str] = field(default_factory=set)  # accepted, then answered 404

    def percentile(self, route: str, q: float) -> float:
        """The ``q``-quantile (0..1) of ``route``'s latencies in seconds (nearest rank)."""
        ordered = sorted(self.latencies[route])
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan

    @property
    def server_errors(self) -> int:
        """5xx answers, except the 503 + Retry-After of a full queue (back-pressure, by design)."""
        return sum(count for (route, status), count in self.statuses.items() if status >= 500 and status != 503)

    @property
    def lost(self) -> set[str]:
        return self.missing | (self.accepted - set(self.finished))

    def summary(self) -> str:
        lines = [f"{self.clients} clients, {self.seconds:g} s; statuses: {dict(sorted(self.statuses.items()))}"]
        for route in (SUBMIT, POLL):
            n = len(self.latencies[route])
            p50, p95, p99 = (1000 * self.percentile(route, q) for q in (0.5, 0.95, 0.99))
            lines.append(f"{route:<20} {n:6d} requests  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms")
        done = Counter(self.finished.values())
        lines.append(
            f"jobs: {len(self.accepted)} accepted, {dict(done)} finished, {len(self.lost)} lost; "
            f"{self.server_errors} server errors"
        )
        return "\n".join(lines)


async def run_load(
    base_url: str,
    clients: int,
    seconds: float,
    job: dict[str, object] = TINY_JOB,
    poll_seconds: float = 0.2,
    drain_seconds: float = 120.0,
    headers: dict[str, str] | None = None,
) -> LoadReport:
    """Run ``clients`` closed-loop clients for ``seconds``, then drain; every wait is bounded."""
    report = LoadReport(clients, seconds)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=30) as http:
        stop_submitting = time.monotonic() + seconds
        give_up = stop_submitting + drain_seconds
        loops = [_client(http, report, job, poll_seconds, stop_submitting, give_up) for _ in range(clients)]
        await asyncio.gather(*loops)
    return report


async def _client(
    http: httpx.AsyncClient,
    report: LoadReport,
    job: dict[str, object],
    poll_seconds: float,
    stop_submitting: float,
    give_up: float,
) -> None:
    while time.monotonic() < stop_submitting:
        response = await _timed(http, report, SUBMIT, "POST", "/v1/jobs", json={**job, "seed": next(report.seeds)})
        if response.status_code != 202:
            await asyncio.sleep(min(float(response.headers.get("retry-after", 1)), MAX_BACKOFF_SECONDS))
            continue
        job_id = response.json()["id"]
        report.accepted.add(job_id)
        await _poll_until_finished(http, report, job_id, poll_seconds, give_up)


async def _poll_until_finished(
    http: httpx.AsyncClient, report: LoadReport, job_id: str, poll_seconds: float, give_up: float
) -> None:
    while time.monotonic() < give_up:
        response = await _timed(http, report, POLL, "GET", f"/v1/jobs/{job_id}")
        if response.status_code == 404:
            report.missing.add(job_id)
            return
        if response.status_code == 200 and (status := response.json()["status"]) in FINAL:
            report.finished[job_id] = status
            return
        await asyncio.sleep(poll_seconds)


async def _timed(
    http: httpx.AsyncClient, report: LoadReport, route: str, method: str, url: str, **kwargs: object
) -> httpx.Response:
    started = time.perf_counter()
    response = await http.request(method, url, **kwargs)  # type: ignore[arg-type]
    report.latencies[route].append(time.perf_counter() - started)
    report.statuses[(route, response.status_code)] += 1
    return response
