"""A job's live events as server-sent events: its state changes, its progress, its previews where it asked
for them, and at the end the job itself.

Events are read from the job's Redis Stream by one reader per job in this process
(:class:`core.store.job_events.JobEventHub`); their ids are the stream's, so a client that
reconnects with ``Last-Event-ID`` misses no state change.
"""

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from api.access import CallerDep, authorize
from api.deps import Services, ServicesDep
from api.problems import not_found, problem_responses, unavailable
from core.job_view import Job
from core.jobs import JobRecord
from core.store.job_events import JobEvent, JobEventHub, collapsed, valid_event_id

router = APIRouter(
    prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(authorize)], responses=problem_responses(401, 429)
)

FINISHED = ("succeeded", "failed", "canceled")
SEND_TIMEOUT_SECONDS = 30.0  # a client that takes longer to accept one event is dropped
STREAM_DOC = {
    "description": "`event: state` (data {status}) for each state change, `event: progress` (data {step, steps}, "
    "a few times a second at most), where the request asked for `previews` `event: preview` (data {step, steps, "
    "pictures: [{layer, filter, variant, step, image}], omitted}: the pictures as they form, each `image` a "
    "`data:image/webp;base64,...` URL of a thumbnail, 64 px on its long side; about once a second, the latest "
    "only on a resume; `omitted` pictures did not fit), and last `event: done` with the job as "
    "GET /v1/jobs/{id} returns it; then the stream ends. Comment lines keep an idle stream alive.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
LastEventId = Annotated[
    str | None, Header(alias="Last-Event-ID", description="the id of the last event received: resume after it")
]


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: STREAM_DOC, **problem_responses(404, 503)},
)
async def job_events(
    job_id: str, request: Request, services: ServicesDep, caller: CallerDep, last_event_id: LastEventId = None
) -> EventSourceResponse:
    """Watch a job: events until it has finished. A job that has finished already answers its `done` at once
    (after the state changes since `Last-Event-ID`, when one is sent)."""
    record = await run_in_threadpool(_record, services, job_id, caller)
    hub: JobEventHub = request.app.state.job_events
    if not hub.reserve():
        detail = f"{services.settings.max_event_streams} event streams are open, the most this process keeps"
        raise unavailable(
            "Too many event streams",
            f"{detail}; poll GET /v1/jobs/{job_id} or retry later",
            "/problems/too-many-streams",
        )
    events = _events(hub, services, record, valid_event_id(last_event_id))
    return EventSourceResponse(events, ping=services.settings.event_ping_seconds, send_timeout=SEND_TIMEOUT_SECONDS)


async def _events(
    hub: JobEventHub, services: Services, record: JobRecord, after: str | None
) -> AsyncIterator[ServerSentEvent]:
    try:
        if record.status in FINISHED:
            missed = collapsed(await hub.history(record.id, after)) if after else []
            for event in missed:
                if event.kind != "preview" and event.status not in FINISHED:
                    yield _sent(event)
            yield _done(record, await hub.last_id(record.id))
            return
        async with aclosing(hub.follow(record.id, after)) as live:
            async for event in live:
                if event.kind == "state" and event.status in FINISHED:
                    final = await run_in_threadpool(services.stores.jobs.get, record.id)
                    if final is not None:
                        yield _done(final, event.id)
                    return
                if event.kind != "preview" or record.request.previews:  # only to a job that asked
                    yield _sent(event)
    finally:
        hub.release()


def _sent(event: JobEvent) -> ServerSentEvent:
    if event.kind == "state":
        return ServerSentEvent(json.dumps({"status": event.status}), event="state", id=event.id)
    if event.kind == "preview":  # the JSON text its worker wrote, sent as it is
        return ServerSentEvent(event.preview, event="preview", id=event.id)
    return ServerSentEvent(json.dumps({"step": event.step, "steps": event.steps}), event="progress", id=event.id)


def _done(record: JobRecord, event_id: str) -> ServerSentEvent:
    return ServerSentEvent(Job.from_record(record).model_dump_json(), event="done", id=event_id)


def _record(services: Services, job_id: str, caller: str | None) -> JobRecord:
    """The caller's job; another caller's is as good as absent (as GET /v1/jobs/{id} answers)."""
    record = services.stores.jobs.get(job_id)
    if record is None or record.caller != caller:
        raise not_found(f"no job {job_id!r}")
    return record
