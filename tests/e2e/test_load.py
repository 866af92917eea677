"""A short load run (bench.load) against the real service: no 5xx, no job lost. `make bench` runs the long one."""

import asyncio

from testkit.load import POLL, SUBMIT, run_load
from testkit.services import ServiceProcess

CLIENTS, SECONDS = 10, 5.0


def test_many_clients_at_once_lose_nothing(api_url: str, worker: ServiceProcess) -> None:
    report = asyncio.run(run_load(api_url, CLIENTS, SECONDS, poll_seconds=0.1, drain_seconds=60))
    print(f"\n{report.summary()}")

    assert report.server_errors == 0 and set(report.statuses) <= {(SUBMIT, 202), (POLL, 200)}, report.statuses
    assert len(report.accepted) >= CLIENTS and report.lost == set()
    assert set(report.finished.values()) == {"succeeded"}
    assert report.percentile(SUBMIT, 0.99) < 5 and report.percentile(POLL, 0.99) < 5  # seconds: a sanity bound
