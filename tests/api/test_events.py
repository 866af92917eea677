"""Job events in one process: the stream a job's state changes write, the hub that fans it out, and
GET /v1/jobs/{id}/events for finished jobs, unknown jobs and the bound on open streams."""

import asyncio
import json

from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.job_events import JobEvent, JobEventHub, collapsed
from tests.api_fixtures import ALICE, BOB, KEY_DIGESTS, AppClient, bearer

SPEC = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters=[0, 1], steps=3, size=32)
JOB = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "0-1", "steps": 3, "size": 32}


def parse(body: str) -> list[tuple[str, str, dict]]:
    """(event, id, data) of each event of a finished text/event-stream body."""
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "event" in fields:
            events.append((fields["event"], fields["id"], json.loads(fields["data"])))
    return events


def run_to_success(stores: Stores, job_id: str) -> None:
    claimed = stores.jobs.claim_next("w", 3, 30)
    assert claimed is not None and claimed[0] == job_id
    for step in (1, 2, 3):
        stores.jobs.beat(job_id, claimed[1], step, 3)
    assert stores.jobs.succeed(job_id, claimed[1], [], "cpu", {})


def test_a_replay_keeps_every_state_change_and_only_the_latest_progress() -> None:
    events = [
        JobEvent("1-0", "state", status="queued"),
        JobEvent("2-0", "state", status="running"),
        JobEvent("3-0", "progress", step=1, steps=9),
        JobEvent("4-0", "state", status="queued"),  # handed back: the progress before it is stale
        JobEvent("5-0", "state", status="running"),
        JobEvent("6-0", "progress", step=1, steps=9),
        JobEvent("7-0", "progress", step=5, steps=9),
    ]
    assert [event.id for event in collapsed(events)] == ["1-0", "2-0", "4-0", "5-0", "7-0"]


def test_every_watcher_gets_every_event_and_a_deleted_job_ends_the_streams(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    job = stores.jobs.create(SPEC)

    async def watch_while_it_runs() -> list[list[JobEvent]]:
        hub = JobEventHub(settings.redis_url or "", max_watchers=10)

        async def one() -> list[JobEvent]:
            return [event async for event in hub.follow(job.id, None)]

        watchers = [asyncio.create_task(one()) for _ in range(3)]
        await asyncio.sleep(0.2)
        await asyncio.to_thread(run_to_success, stores, job.id)
        await asyncio.sleep(0.2)
        await asyncio.to_thread(stores.jobs.delete, job.id)
        return await asyncio.wait_for(asyncio.gather(*watchers), timeout=30)

    seen = asyncio.run(watch_while_it_runs())

    expected = ["queued", "running", 1, 2, 3, "succeeded"]
    for events in seen:
        assert [event.status or event.step for event in events] == expected


def test_a_finished_job_answers_done_at_once_after_the_state_changes_missed(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    _, stores = scratch
    client = app_client()
    job_id = client.post("/v1/jobs", json=JOB).json()["id"]
    run_to_success(stores, job_id)

    fresh = parse(client.get(f"/v1/jobs/{job_id}/events").text)
    assert [name for name, _, _ in fresh] == ["done"]
    assert fresh[0][2] == client.get(f"/v1/jobs/{job_id}").json()

    first_id = parse(client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "0-0"}).text)
    assert [(name, data.get("status")) for name, _, data in first_id] == [
        ("state", "queued"),
        ("state", "running"),
        ("done", "succeeded"),
    ]
    resumed = parse(client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": first_id[0][1]}).text)
    assert [(name, data.get("status")) for name, _, data in resumed] == [("state", "running"), ("done", "succeeded")]


def test_another_callers_job_and_an_unknown_one_are_404_problems(app_client: AppClient) -> None:
    client = app_client(api_keys=KEY_DIGESTS)
    job_id = client.post("/v1/jobs", json=JOB, headers=bearer(ALICE)).json()["id"]

    for path, key in ((f"/v1/jobs/{job_id}/events", BOB), ("/v1/jobs/" + "0" * 32 + "/events", ALICE)):
        response = client.get(path, headers=bearer(key))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


def test_a_stream_beyond_the_bound_is_a_503_with_retry_after(app_client: AppClient) -> None:
    client = app_client(max_event_streams=1)
    job_id = client.post("/v1/jobs", json=JOB).json()["id"]
    assert client.app.state.job_events.reserve()  # type: ignore[attr-defined]  # one stream open

    response = client.get(f"/v1/jobs/{job_id}/events")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "Retry-After" in response.headers
    assert "1 event streams are open" in response.json()["detail"]
