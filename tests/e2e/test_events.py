"""A job's event stream over real HTTP, from a real worker through Redis and uvicorn: state changes and
progress as they happen, the finished job at the end, resuming with Last-Event-ID, another caller's 404,
and what a hundred watchers of one job cost (printed: run with -s to see the figures)."""

import asyncio
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from core.settings import Settings
from core.store.connection import connect
from tests.api_fixtures import ALICE, BOB, bearer
from tests.service_fixtures import SMALL_JOB, submit

WATCHED_JOB = {**SMALL_JOB, "steps": 120}  # long enough for several progress events
STREAM_SECONDS = 90


@dataclass
class Event:
    name: str
    id: str
    data: dict
    received_ms: float


def read_events(
    http: httpx.Client, job_id: str, headers: dict[str, str] | None = None, stop_after: int = 0
) -> list[Event]:
    """The events of one connection, until the server ends the stream (or ``stop_after`` events)."""
    events: list[Event] = []
    with http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers or {}, timeout=STREAM_SECONDS) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if "event" in fields:
                events.append(Event(fields["event"], fields["id"], json.loads(fields["data"]), time.time() * 1000))
                if len(events) == stop_after:
                    break
            fields = {}
    return events


def seeded(seed: int) -> dict:
    return {**WATCHED_JOB, "seed": seed}  # a seed of its own: rendered, not found in the cache


def test_a_watcher_sees_the_job_run_progress_and_finish_as_get_returns_it(client: httpx.Client) -> None:
    job = submit(client, {**seeded(8101), "steps": 400})  # a few seconds: enough progress events to time
    events = read_events(client, job["id"])

    names = [event.name for event in events]
    assert names[-1] == "done" and names.count("done") == 1
    assert {"status": "running"} in [event.data for event in events if event.name == "state"]
    steps = [event.data["step"] for event in events if event.name == "progress"]
    assert len(steps) >= 2 and steps == sorted(steps) and steps[-1] == 400
    done = events[-1].data
    assert done["status"] == "succeeded"
    assert done == client.get(f"/v1/jobs/{job['id']}").json()
    latencies = [event.received_ms - int(event.id.split("-")[0]) for event in events if event.name == "progress"]
    print(
        f"\nprogress write -> client: median {statistics.median(latencies):.1f} ms, "
        f"p95 {statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else latencies[0]:.1f} ms "
        f"over {len(latencies)} events"
    )


def test_resuming_with_last_event_id_loses_no_state_change(client: httpx.Client) -> None:
    job = submit(client, seeded(8102))
    first = read_events(client, job["id"], stop_after=2)
    rest = read_events(client, job["id"], headers={"Last-Event-ID": first[-1].id})

    states = [event.data["status"] for event in first + rest if event.name == "state"]
    assert states[0] == "queued" and "running" in states
    assert rest[-1].name == "done" and rest[-1].data["status"] == "succeeded"
    ids = [event.id for event in first + rest]
    assert len(ids) == len(set(ids))  # nothing twice


def test_a_watcher_of_a_finished_job_gets_done_at_once(client: httpx.Client) -> None:
    job = submit(client, seeded(8103))
    read_events(client, job["id"])
    started = time.monotonic()
    events = read_events(client, job["id"])

    assert [event.name for event in events] == ["done"]
    assert events[0].data == client.get(f"/v1/jobs/{job['id']}").json()
    assert time.monotonic() - started < 2


def test_an_unknown_job_is_a_404_problem(client: httpx.Client) -> None:
    response = client.get("/v1/jobs/0123456789abcdef0123456789abcdef/events")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_another_callers_job_is_a_404_and_ones_own_streams(keyed_api: str) -> None:
    with httpx.Client(base_url=keyed_api, timeout=60) as http:
        job = http.post("/v1/jobs", json=seeded(8104), headers=bearer(ALICE)).json()
        assert http.get(f"/v1/jobs/{job['id']}/events", headers=bearer(BOB)).status_code == 404
        assert http.get(f"/v1/jobs/{job['id']}/events").status_code == 401
        events = read_events(http, job["id"], headers=bearer(ALICE))
    assert events[-1].data["status"] == "succeeded"


async def watch_all(api_url: str, job_id: str, watchers: int) -> list[list[tuple[str, str, float]]]:
    """Each watcher's (event, id, received in ms since the epoch), read concurrently."""
    limits = httpx.Limits(max_connections=watchers + 1)
    async with httpx.AsyncClient(base_url=api_url, timeout=STREAM_SECONDS, limits=limits) as http:

        async def one() -> list[tuple[str, str, float]]:
            seen, fields = [], {}
            async with http.stream("GET", f"/v1/jobs/{job_id}/events") as response:
                async for line in response.aiter_lines():
                    if line:
                        name, _, value = line.partition(": ")
                        fields[name] = value
                    elif "event" in fields:
                        seen.append((fields["event"], fields["id"], time.time() * 1000))
                        fields = {}
            return seen

        return await asyncio.gather(*(one() for _ in range(watchers)))


def api_cpu_seconds(port: int) -> float:
    """User + system CPU of the uvicorn process listening on ``port`` (found through /proc)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"uvicorn" in b" ".join(cmdline) and str(port).encode() in cmdline:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    raise AssertionError(f"no uvicorn on port {port}")


def test_a_hundred_watchers_of_one_job_share_one_reader(
    client: httpx.Client, api_url: str, service_settings: Settings
) -> None:
    redis = connect(service_settings.redis_url or "")
    port = int(api_url.rsplit(":", 1)[1])
    job = submit(client, {**seeded(8105), "steps": 400})
    redis.config_resetstat()
    cpu_before = api_cpu_seconds(port)
    streams = asyncio.run(watch_all(api_url, job["id"], 100))
    cpu = api_cpu_seconds(port) - cpu_before
    stats = redis.info("commandstats")

    assert all(events and events[-1][0] == "done" for events in streams)
    reads = stats.get("cmdstat_xread", {}).get("calls", 0)
    progress = sum(name == "progress" for name, _, _ in streams[0])
    assert reads <= progress + 20  # one reader, not one per watcher
    calls = {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
    lags = sorted(at - int(i.split("-")[0]) for events in streams for name, i, at in events if name == "progress")
    print(
        f"\n100 watchers: API CPU {cpu:.2f} s, Redis calls {calls}, progress events per watcher {progress}, "
        f"progress write -> every watcher: median {statistics.median(lags):.1f} ms, "
        f"p95 {lags[len(lags) * 95 // 100]:.1f} ms"
    )
