"""Live previews over real HTTP from a real worker: a job that asks gets `preview` events with its pictures as
they form, about once a second; a job that does not ask gets none; `filterviz watch` counts them. Prints what
previews cost (run with -s): events, bytes each, and the worker's time per step with and without."""

import base64
import io
import json
import time
from dataclasses import dataclass

import httpx
import pytest
from PIL import Image

from core.settings import Settings
from core.store.connection import connect
from core.store.job_events import JobPreviews
from filterviz.cli import main
from tests.service_fixtures import submit, wait_for_job

EIGHT_FILTERS = {"model": "efficientnet_lite0", "layer": "blocks.4", "filters": "0-7", "size": 64, "steps": 300}
STREAM_SECONDS = 120


@dataclass
class Event:
    name: str
    id: str
    data: str  # as sent: JSON text
    received: float  # time.monotonic()

    @property
    def written_ms(self) -> int:
        """When the worker's write reached Redis: the stream id's time."""
        return int(self.id.split("-")[0])


def read_events(http: httpx.Client, job_id: str) -> list[Event]:
    events: list[Event] = []
    with http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=STREAM_SECONDS) as response:
        assert response.status_code == 200, response.read()
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            elif "event" in fields:
                events.append(Event(fields["event"], fields["id"], fields["data"], time.monotonic()))
                fields = {}
    return events


def decoded(image: str) -> Image.Image:
    mime, _, data = image.partition(";base64,")
    assert mime == "data:image/webp", mime
    return Image.open(io.BytesIO(base64.b64decode(data)))


def step_ms(job: dict) -> float:
    return 1000 * job["seconds"]["optimize"] / job["request"]["steps"]


def test_a_job_with_previews_streams_its_pictures_forming_about_once_a_second(client: httpx.Client) -> None:
    job = submit(client, {**EIGHT_FILTERS, "seed": 8301, "previews": True})
    events = read_events(client, job["id"])

    assert events[-1].name == "done" and json.loads(events[-1].data)["status"] == "succeeded"
    previews = [event for event in events if event.name == "preview"]
    assert len(previews) >= 2, [event.name for event in events]
    last_step = 0
    for event in previews:
        preview = json.loads(event.data)
        assert preview["omitted"] == 0 and preview["steps"] == 300
        assert [(p["layer"], p["filter"], p["variant"]) for p in preview["pictures"]] == [
            ("blocks.4", f, 0) for f in range(8)
        ]
        assert all(decoded(p["image"]).size == (64, 64) for p in preview["pictures"])
        assert last_step < preview["step"] <= 300 and all(p["step"] == preview["step"] for p in preview["pictures"])
        last_step = preview["step"]
    gaps = [b.written_ms - a.written_ms for a, b in zip(previews, previews[1:], strict=False)]
    assert min(gaps) >= 900, gaps  # FILTERVIZ_PREVIEW_SECONDS = 1, to within the write's jitter
    progress = [event for event in events if event.name == "progress"]
    span_s = (progress[-1].written_ms - progress[0].written_ms) / 1000
    assert len(progress) <= 5 * span_s + 2  # progress stays a few a second

    plain = submit(client, {**EIGHT_FILTERS, "seed": 8302})
    plain_events = read_events(client, plain["id"])
    assert plain_events[-1].name == "done"
    assert "preview" not in {event.name for event in plain_events}

    with_previews, without = client.get(f"/v1/jobs/{job['id']}").json(), json.loads(plain_events[-1].data)
    sizes = [len(event.data) for event in previews]
    print(
        f"\n8 filters, 300 steps at 64 px: {len(previews)} previews in {span_s:.1f} s, "
        f"{min(sizes)}-{max(sizes)} bytes each ({sum(sizes) / len(sizes) / 8:.0f} a picture); worker time a step "
        f"{step_ms(with_previews):.2f} ms with previews, {step_ms(without):.2f} ms without"
    )


def test_a_job_that_did_not_ask_gets_no_preview_even_where_one_was_published(
    client: httpx.Client, service_settings: Settings
) -> None:
    job = submit(client, {**EIGHT_FILTERS, "steps": 300, "seed": 8303})
    wait_for_job(client, job["id"], lambda seen: seen["status"] == "running")
    owner = connect(service_settings.redis_url or "").hget(f"filterviz:job:{job['id']}", "owner")
    published = JobPreviews(connect(service_settings.redis_url or ""), 60).publish(job["id"], owner or "", "{}")
    events = read_events(client, job["id"])  # its replay would hold that preview: the route leaves it out

    assert published and events[-1].name == "done"
    assert {event.name for event in events} == {"state", "progress", "done"}


def test_watch_counts_the_previews_of_a_job(
    api_url: str, client: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    job = submit(client, {**EIGHT_FILTERS, "steps": 20, "seed": 8304, "previews": True})
    code = main(["watch", "--api", api_url, job["id"]])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == f"{job['id']}: succeeded"
    assert " previews" in err
