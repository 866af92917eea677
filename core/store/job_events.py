"""Each job's events (state changes, progress, previews) as a Redis Stream beside its record, and the API's fan-out.

The Lua scripts of :mod:`core.store.jobs` append to the stream in the same step that changes the
record (:data:`EMIT_LUA`), so no state change is ever missing from it; stream ids are the events'
ids, which is what lets a client resume with ``Last-Event-ID``. The stream expires with its job
and holds at most every progress write and preview marker of every attempt (steps and attempts
are bounded).

A preview (:class:`JobPreviews`, a job's current pictures as small thumbnails) is too big for the
stream: only the latest is kept, in a key of its own that expires soon after the last one, and the
stream gets a marker without payload. A reader fetches the payload when it sees the marker: a
preview that expired meanwhile is skipped (previews are never needed for correctness).

In the API, :class:`JobEventHub` runs one blocking reader per watched job and hands each event to
every local watcher: a hundred watchers of one job cost one XREAD, not a hundred polls.
"""

import asyncio
import re
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from typing import Literal

from redis import Redis, RedisError
from redis.asyncio import Redis as AsyncRedis

from core.jobs import JOB_ID

EVENTS_SUFFIX = ":events"  # appended to the job's record key
PREVIEW_SUFFIX = ":preview"  # the latest preview's key: the record key and this
# approximate trim: above max_steps × max_attempts progress writes at the defaults, and as many preview
# markers again (at most one a step, and no more often than progress: FILTERVIZ_PREVIEW_SECONDS >= 0.25)
MAX_EVENTS = 2 * 8192
PREVIEW_TTL_MS = 60_000  # a preview outlives its next one's due time (~1 s) by far, and the job by little
BLOCK_MS = 5000  # one reader's XREAD wait; after an empty one it checks that the job still exists
READ_COUNT = 200
_EVENT_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
_JOB_PREFIX = "filterviz:job:"  # as core.store.jobs names records

# emit(key, field, value, ...): append an event to the stream of the job whose record is ``key``,
# expiring with the record (a record without an expiry yet: RETENTION, as its create sets next).
EMIT_LUA = f"""
local function emit(key, ...)
  local stream = key .. {EVENTS_SUFFIX!r}
  redis.call('XADD', stream, 'MAXLEN', '~', {MAX_EVENTS}, '*', ...)
  local ttl = redis.call('PTTL', key)
  if ttl > 0 then redis.call('PEXPIRE', stream, ttl) else redis.call('EXPIRE', stream, RETENTION) end
end
"""

# KEYS: job record. ARGV: owner token, the preview (JSON text). Only a running job's owner publishes.
_PUBLISH_PREVIEW = f"""
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1] .. {PREVIEW_SUFFIX!r}, ARGV[2], 'PX', {PREVIEW_TTL_MS})
emit(KEYS[1], 'type', 'preview')
return 1
"""

EventKind = Literal["state", "progress", "preview"]


@dataclass(frozen=True)
class JobEvent:
    id: str  # the stream id: "<ms>-<seq>"
    kind: EventKind
    status: str | None = None  # state events
    step: int | None = None  # progress events
    steps: int | None = None
    preview: str | None = None  # preview events, once fetched: the JSON text JobPreviews.publish stored


class JobPreviews:
    """The latest preview of each running job that asked for previews, written by its worker."""

    def __init__(self, redis: Redis, retention_seconds: int) -> None:
        self._publish = redis.register_script(f"local RETENTION = {retention_seconds}\n" + EMIT_LUA + _PUBLISH_PREVIEW)

    def publish(self, job_id: str, token: str, preview: str) -> bool:
        """Keep ``preview`` as the job's latest and tell its watchers; False where ``token`` no longer owns it."""
        return bool(self._publish(keys=[_JOB_PREFIX + job_id], args=[token, preview]))


def events_key(job_id: str) -> str:
    return _JOB_PREFIX + job_id + EVENTS_SUFFIX


def valid_event_id(text: str | None) -> str | None:
    """``text`` if it is a stream id this service could have handed out, else None (start from the beginning)."""
    return text if text is not None and _EVENT_ID.match(text) else None


def preview_key(job_id: str) -> str:
    return _JOB_PREFIX + job_id + PREVIEW_SUFFIX


def decode_event(entry_id: str, fields: dict[str, str]) -> JobEvent:
    kind = fields.get("type")
    if kind == "state":
        return JobEvent(entry_id, "state", status=fields["status"])
    if kind == "preview":
        return JobEvent(entry_id, "preview")
    return JobEvent(entry_id, "progress", step=int(fields["step"]), steps=int(fields["steps"]))


def collapsed(events: list[JobEvent]) -> list[JobEvent]:
    """What a replay sends: every state change, and the latest progress and preview if they came after the last one."""
    last_state = max((i for i, event in enumerate(events) if event.kind == "state"), default=-1)
    kept = [event for event in events if event.kind == "state"]
    since = events[last_state + 1 :]
    latest = [[event for event in since if event.kind == kind][-1:] for kind in ("progress", "preview")]
    return kept + sorted(latest[0] + latest[1], key=lambda event: _order(event.id))


def newer(event_id: str, than: str) -> bool:
    return _order(event_id) > _order(than)


def _order(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


@dataclass
class _Feed:
    """One job's reader and the queues of its local watchers (None in a queue: the feed ended)."""

    queues: set["asyncio.Queue[JobEvent | None]"] = field(default_factory=set)
    task: "asyncio.Task[None] | None" = None


class JobEventHub:
    """Fan-out of job events within one API process, with a bound on the streams open at once."""

    def __init__(self, url: str, max_watchers: int) -> None:
        self._url = url
        self._max_watchers = max_watchers
        self._watchers = 0
        self._feeds: dict[str, _Feed] = {}
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncRedis] = weakref.WeakKeyDictionary()

    def reserve(self) -> bool:
        """Take a watcher's place (False: all taken); :meth:`follow` gives it back when it ends."""
        if self._watchers >= self._max_watchers:
            return False
        self._watchers += 1
        return True

    def release(self) -> None:
        self._watchers -= 1

    async def history(self, job_id: str, after: str | None) -> list[JobEvent]:
        """The job's events after ``after`` (all of them for None), oldest first."""
        start = f"({after}" if after else "-"
        entries = await self._redis().xrange(events_key(job_id), min=start, count=MAX_EVENTS)
        return [decode_event(entry_id, fields) for entry_id, fields in entries]

    async def last_id(self, job_id: str) -> str:
        entries = await self._redis().xrevrange(events_key(job_id), count=1)
        return entries[0][0] if entries else "0-0"

    async def follow(self, job_id: str, after: str | None) -> AsyncGenerator[JobEvent, None]:
        """The replay after ``after`` (:func:`collapsed`), then every new event as it comes, until the job is
        gone or Redis fails (the client reconnects with its Last-Event-ID)."""
        queue: asyncio.Queue[JobEvent | None] = asyncio.Queue()
        feed = self._feeds.get(job_id)
        if feed is None:
            feed = self._feeds[job_id] = _Feed()
            feed.task = asyncio.create_task(self._read(job_id, after or "0-0", feed))
        feed.queues.add(queue)  # before the replay is read, so nothing falls between the two
        try:
            past = await self.history(job_id, after)
            last = past[-1].id if past else after or "0-0"
            for event in collapsed(past):
                sent = await self._with_preview(job_id, event) if event.kind == "preview" else event
                if sent is not None:
                    yield sent
            while (fresh := await queue.get()) is not None:
                if newer(fresh.id, last):
                    last = fresh.id
                    yield fresh
        finally:
            feed.queues.discard(queue)
            if not feed.queues and self._feeds.get(job_id) is feed:
                del self._feeds[job_id]
                if feed.task is not None:
                    feed.task.cancel()

    async def _read(self, job_id: str, cursor: str, feed: _Feed) -> None:
        redis, key = self._redis(), events_key(job_id)
        try:
            # Ends by itself once no watcher is left: redis-py can swallow the cancel of a blocked XREAD
            # (seen with redis 8.1), so a canceled reader must still stop within one BLOCK_MS.
            while feed.queues:  # its first watcher is added before the task first runs
                reply = await redis.xread({key: cursor}, count=READ_COUNT, block=BLOCK_MS)
                if not reply:
                    if not JOB_ID.match(job_id) or not await redis.exists(_JOB_PREFIX + job_id):
                        break
                    continue
                entries = reply[0][1]
                cursor = entries[-1][0]
                events = [decode_event(entry_id, fields) for entry_id, fields in entries]
                latest_preview = max((i for i, event in enumerate(events) if event.kind == "preview"), default=-1)
                for index, event in enumerate(events):
                    sent: JobEvent | None = event
                    if event.kind == "preview":  # one fetch per read, for all watchers: the latest marker's
                        sent = await self._with_preview(job_id, event) if index == latest_preview else None
                    if sent is None:
                        continue
                    for queue in feed.queues:
                        queue.put_nowait(sent)
        except RedisError:
            pass  # the watchers' streams end; their clients resume from their Last-Event-ID
        if self._feeds.get(job_id) is feed:
            del self._feeds[job_id]
        for queue in feed.queues:
            queue.put_nowait(None)

    async def _with_preview(self, job_id: str, marker: JobEvent) -> JobEvent | None:
        """The marker with the job's latest preview; None where it has expired."""
        preview = await self._redis().get(preview_key(job_id))
        return None if preview is None else replace(marker, preview=preview)

    def _redis(self) -> AsyncRedis:
        """redis.asyncio connections belong to the event loop that opened them: one client per loop."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:  # a socket timeout above the XREAD wait (redis-py's default is shorter)
            timeout = BLOCK_MS / 1000 + 10
            client = AsyncRedis.from_url(
                self._url, decode_responses=True, health_check_interval=30, socket_timeout=timeout
            )
            self._clients[loop] = client
        return client
