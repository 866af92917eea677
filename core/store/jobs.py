"""Job records in Redis: the single source of truth for a job's state. Torch-free.

A record is a Redis hash ``filterviz:job:{id}``; every state change is one Lua script, so it is
atomic and uses Redis's clock (workers on different machines never compare their own clocks).
A worker that claims a job gets an owner token; progress, heartbeats and the final state are
only accepted from the current owner, so a job that was handed to another worker (its first
worker went silent) is finished exactly once.

Admission is part of the same atomic step: a create checks the Idempotency-Key record, the queue
bound and the caller's bound before it writes anything. Every start and end of a job with a
webhook records an event in the webhook outbox within the script that makes the change.

The same scripts keep what is derived from the state: an index per caller and status (listing one
status reads only its jobs), a queue per caller from which ``claim_next`` serves callers in turn,
and the dispatch outbox, where a queued job stays until its Celery message is marked sent (a
worker's janitor sends what a crashed API never did).
"""

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import get_args

from redis import Redis

from core.batching import batch_key
from core.errors import InvalidCursor, WorkerLost
from core.jobs import (
    JOB_ID,
    Admission,
    BeatState,
    CancelOutcome,
    Claim,
    JobError,
    JobRecord,
    JobStatus,
    Limits,
)
from core.pictures import Picture
from core.spec import RenderSpec
from core.store.job_events import EMIT_LUA, EVENTS_SUFFIX
from core.store.pending import pending_key
from core.store.webhook_outbox import NOTIFY_LUA

_CURSOR_SCORE = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,17})?$")  # a creation time as repr() writes it: never nan, inf
_PREFIX = "filterviz:job:"
_INDEX = "filterviz:jobs"  # sorted set: job id scored by creation time (jobs of no API key)
_CALLER_INDEX = "filterviz:jobs:by:"  # + caller: the same, for one API key's jobs
_RUNNING = "filterviz:jobs:running"  # set: ids the janitor watches
_QUEUED = "filterviz:jobs:queued"  # set: ids waiting for a worker (the queue bound counts them)
_ACTIVE = "filterviz:jobs:active:"  # + caller or '-': set of that caller's queued and running ids
_IDEMPOTENCY = "filterviz:idempotency:"  # + caller or '-' + ':' + key digest: hash job, fingerprint
_BY_STATUS = "filterviz:jobs:status:"  # + caller or '-' + ':' + status: sorted set, ids by creation time
_FAIR = "filterviz:jobs:fair:"  # + caller or '-': sorted set of that caller's queued ids, oldest first
_TURNS = "filterviz:jobs:turns"  # sorted set: callers with queued jobs, scored by when they were last served
_TURN_COUNTER = "filterviz:jobs:turn"  # counter: the score of the latest turn
_OUTBOX = "filterviz:jobs:undispatched"  # sorted set: ids whose Celery message may not be sent, by creation time
_JSON_FIELDS = ("request", "results", "error", "seconds")
_LIST_BATCH = 100
_NEXT_TRIES = 100  # most stale entries one claim_next skips (canceled or expired jobs) before giving up
_SWEEP_BATCH = 100  # most undispatched jobs one sweep answers for


_LUA_HELPERS = """
local function now()
  local t = redis.call('TIME')
  return string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
end
local function owned(key, token)
  return redis.call('HGET', key, 'status') == 'running' and redis.call('HGET', key, 'owner') == token
end
local function who(key)
  return redis.call('HGET', key, 'caller') or '-'  -- as _caller_name() names it
end
local function set_status(key, status)  -- and move the job between its caller's status indexes
  local id, caller = redis.call('HGET', key, 'id'), who(key)
  local old = redis.call('HGET', key, 'status')
  if old then redis.call('ZREM', BY_STATUS .. caller .. ':' .. old, id) end
  redis.call('HSET', key, 'status', status)
  local index = BY_STATUS .. caller .. ':' .. status
  redis.call('ZADD', index, redis.call('HGET', key, 'created_at'), id)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. (tonumber(now()) - RETENTION))
  emit(key, 'type', 'state', 'status', status)
end
local function enqueue(key)  -- in line for a worker (its caller's turn), and owed a Celery message (the outbox)
  local id, caller = redis.call('HGET', key, 'id'), who(key)
  redis.call('ZADD', FAIR .. caller, redis.call('HGET', key, 'created_at'), id)
  redis.call('ZADD', TURNS, 'NX', 0, caller)
  redis.call('SADD', QUEUED, id)
  redis.call('ZADD', OUTBOX, now(), id)
end
local function dequeue(key)
  local id = redis.call('HGET', key, 'id')
  redis.call('ZREM', FAIR .. who(key), id)
  redis.call('SREM', QUEUED, id)
  redis.call('ZREM', OUTBOX, id)
end
local function finish(key, running, status, t)
  set_status(key, status)
  redis.call('HSET', key, 'finished_at', t)
  local id = redis.call('HGET', key, 'id')
  redis.call('SREM', running, id)
  dequeue(key)
  redis.call('SREM', ACTIVE .. who(key), id)  -- as _active_key() names it
  notify(key, status, t)
end
-- A queued job (or a running one whose worker went silent) for this worker. ARGV of the callers:
-- token, worker, max attempts, stale after seconds, exhausted error json.
local function take(key, running, token, worker, max_attempts, stale, gave_up)
  local status = redis.call('HGET', key, 'status')
  if not status then return 'missing' end
  if status ~= 'queued' and status ~= 'running' then return 'finished' end
  local t = now()
  if status == 'running' and tonumber(t) - tonumber(redis.call('HGET', key, 'heartbeat_at')) < tonumber(stale) then
    return 'busy'
  end
  if redis.call('HGET', key, 'cancel_requested') == '1' then
    finish(key, running, 'canceled', t)
    return 'canceled'
  end
  if redis.call('HINCRBY', key, 'attempts', 1) > tonumber(max_attempts) then
    redis.call('HSET', key, 'error', gave_up)
    finish(key, running, 'failed', t)
    return 'exhausted'
  end
  set_status(key, 'running')
  redis.call('HSET', key, 'owner', token, 'worker', worker, 'started_at', t, 'heartbeat_at', t, 'step', 0)
  redis.call('SADD', running, redis.call('HGET', key, 'id'))
  dequeue(key)
  notify(key, 'started', t)
  return 'claimed'
end
"""
_LUA_CONSTANTS = {
    "QUEUED": _QUEUED,
    "ACTIVE": _ACTIVE,
    "BY_STATUS": _BY_STATUS,
    "FAIR": _FAIR,
    "TURNS": _TURNS,
    "OUTBOX": _OUTBOX,
    "EVENTS_SUFFIX": EVENTS_SUFFIX,
}

# KEYS: job, index, queued, caller's active set, idempotency record ('' for none), pending jobs of its batch key.
# ARGV: id, request json, steps, retention seconds, caller, webhook ('' for none), max queued, max active
# (0: unbounded), request fingerprint, idempotency seconds.
_CREATE = f"""
if KEYS[5] ~= '' then
  local seen = redis.call('HMGET', KEYS[5], 'job', 'fingerprint')
  if seen[1] and redis.call('EXISTS', {_PREFIX!r} .. seen[1]) == 1 then
    if seen[2] == ARGV[9] then return {{'replayed', seen[1]}} end
    return {{'conflict', seen[1]}}
  end
end
if tonumber(ARGV[7]) > 0 and redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[7]) then return {{'queue_full', ''}} end
if tonumber(ARGV[8]) > 0 and redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[8]) then return {{'caller_busy', ''}} end
local t = now()
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'request', ARGV[2], 'step', 0, 'steps', ARGV[3], 'created_at', t,
           'attempts', 0, 'cancel_requested', 0)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'caller', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'webhook', ARGV[6]) end
set_status(KEYS[1], 'queued')
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], t, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (tonumber(t) - tonumber(ARGV[4])))
enqueue(KEYS[1])
redis.call('ZADD', KEYS[6], t, ARGV[1])
redis.call('EXPIRE', KEYS[6], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[1])
if KEYS[5] ~= '' then
  redis.call('HSET', KEYS[5], 'job', ARGV[1], 'fingerprint', ARGV[9])
  redis.call('EXPIRE', KEYS[5], ARGV[10])
end
return {{'created', ARGV[1]}}
"""

# KEYS: job, running. ARGV: see take().
_CLAIM = """
return take(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"""

# The oldest queued job of the caller served longest ago, claimed. KEYS: running. ARGV: see take().
# Returns {outcome, id}; {'empty', ''} when no job is queued.
_CLAIM_NEXT = f"""
for _ = 1, {_NEXT_TRIES} do
  local turn = redis.call('ZRANGE', TURNS, 0, 0)
  if #turn == 0 then return {{'empty', ''}} end
  local queue = FAIR .. turn[1]
  local first = redis.call('ZRANGE', queue, 0, 0)
  if #first == 0 then
    redis.call('ZREM', TURNS, turn[1])
  else
    redis.call('ZREM', queue, first[1])
    if redis.call('ZCARD', queue) == 0 then redis.call('ZREM', TURNS, turn[1])
    else redis.call('ZADD', TURNS, redis.call('INCR', {_TURN_COUNTER!r}), turn[1]) end
    local key = {_PREFIX!r} .. first[1]
    if redis.call('HGET', key, 'status') == 'queued' then
      local outcome = take(key, KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
      if outcome == 'claimed' then return {{'claimed', first[1]}} end
    else
      redis.call('SREM', QUEUED, first[1])  -- expired, or left over: no longer waiting
    end
  end
end
return {{'empty', ''}}
"""

# KEYS: job. ARGV: token, step ('' = heartbeat only), steps.
_BEAT = """
if not owned(KEYS[1], ARGV[1]) then return 'lost' end
redis.call('HSET', KEYS[1], 'heartbeat_at', now())
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'step', ARGV[2], 'steps', ARGV[3])
  emit(KEYS[1], 'type', 'progress', 'step', ARGV[2], 'steps', ARGV[3])
end
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then return 'cancel' end
return 'ok'
"""

# KEYS: job, running. ARGV: token, final status, then field/value pairs to store.
_FINISH = """
if not owned(KEYS[1], ARGV[1]) then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
finish(KEYS[1], KEYS[2], ARGV[2], now())
return 1
"""

# KEYS: job, running. ARGV: id, stale after seconds.
_REQUEUE = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' then
  redis.call('SREM', KEYS[2], ARGV[1])
  return 0
end
if tonumber(now()) - tonumber(redis.call('HGET', KEYS[1], 'heartbeat_at')) < tonumber(ARGV[2]) then return 0 end
set_status(KEYS[1], 'queued')
redis.call('HSET', KEYS[1], 'owner', '')
redis.call('SREM', KEYS[2], ARGV[1])
enqueue(KEYS[1])
return 1
"""

# The owner hands its job back to run alone, the attempt not counted. KEYS: job, running. ARGV: token.
_RELEASE = """
if not owned(KEYS[1], ARGV[1]) then return 0 end
set_status(KEYS[1], 'queued')
redis.call('HSET', KEYS[1], 'owner', '', 'solo', 1, 'step', 0)
redis.call('HINCRBY', KEYS[1], 'attempts', -1)
redis.call('SREM', KEYS[2], redis.call('HGET', KEYS[1], 'id'))
enqueue(KEYS[1])
return 1
"""

# KEYS: job, index, running, queued, caller's active set. ARGV: id.
_DELETE = """
local status, caller = redis.call('HGET', KEYS[1], 'status'), who(KEYS[1])
if status then redis.call('ZREM', BY_STATUS .. caller .. ':' .. status, ARGV[1]) end
redis.call('ZREM', FAIR .. caller, ARGV[1])
redis.call('ZREM', OUTBOX, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, 5 do redis.call('SREM', KEYS[i], ARGV[1]) end
redis.call('DEL', KEYS[1] .. EVENTS_SUFFIX)
return redis.call('DEL', KEYS[1])
"""

# KEYS: job, running.
_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'cancel_requested', 1)
  finish(KEYS[1], KEYS[2], 'canceled', now())
  return 'canceled'
end
if status == 'running' then
  redis.call('HSET', KEYS[1], 'cancel_requested', 1)
  return 'requested'
end
return 'finished'
"""

# ARGV: older than seconds, how many. Ids in the outbox created that long ago, oldest first.
_DUE_FOR_DISPATCH = """
return redis.call('ZRANGEBYSCORE', OUTBOX, '-inf', tonumber(now()) - tonumber(ARGV[1]), 'LIMIT', 0, ARGV[2])
"""


UNBOUNDED = Limits()  # no queue or caller bound


class JobStore:
    """Create, read, list and move jobs through their states (``redis`` must decode responses)."""

    def __init__(self, redis: Redis, retention_seconds: int) -> None:
        self._redis = redis
        self._retention = retention_seconds
        prelude = _prelude(retention_seconds)
        self._create, self._claim, self._claim_next, self._beat, self._finish, self._requeue, self._release = (
            redis.register_script(prelude + body)
            for body in (_CREATE, _CLAIM, _CLAIM_NEXT, _BEAT, _FINISH, _REQUEUE, _RELEASE)
        )
        self._cancel, self._delete, self._due = (
            redis.register_script(prelude + body) for body in (_CANCEL, _DELETE, _DUE_FOR_DISPATCH)
        )

    # -- the API's side ------------------------------------------------------------------------

    def create(self, spec: RenderSpec) -> JobRecord:
        """A queued job, unconditionally (no caller, no bounds)."""
        admission = self.admit(spec)
        assert admission.job is not None  # nothing bounds it
        return admission.job

    def admit(
        self,
        spec: RenderSpec,
        *,
        caller: str | None = None,
        webhook: str | None = None,
        limits: Limits = UNBOUNDED,
        idempotency: tuple[str, str] | None = None,
        idempotency_seconds: int = 24 * 3600,
    ) -> Admission:
        """Create a queued job unless a bound says no, all in one atomic step.

        ``idempotency`` is (the client's Idempotency-Key, a fingerprint of the request): a key seen
        before (and its job still stored) answers ``replayed`` with that job when the fingerprint
        matches, ``conflict`` when it does not, and creates nothing. A new job waits in the
        undispatched outbox until :meth:`mark_dispatched` says its Celery message was sent.
        """
        job_id = uuid.uuid4().hex
        key, fingerprint = idempotency or ("", "")
        outcome, found = self._create(
            keys=[
                _key(job_id),
                _index_key(caller),
                _QUEUED,
                _active_key(caller),
                _idempotency_key(caller, key),
                pending_key(batch_key(spec)),
            ],
            args=[
                job_id,
                spec.model_dump_json(),
                spec.steps,
                self._retention,
                caller or "",
                webhook or "",
                limits.max_queued or 0,
                limits.max_active_per_caller or 0,
                fingerprint,
                min(idempotency_seconds, self._retention),
            ],
        )
        if outcome == "conflict":
            return Admission(outcome, conflicting_id=found)
        return Admission(outcome, self.get(found) if found else None)

    def delete(self, job_id: str, caller: str | None = None) -> bool:
        """Forget a job (its files are the caller's to remove); False if there was none.

        A worker rendering it loses its claim at its next step and stops.
        """
        if not JOB_ID.match(job_id):
            return False
        keys = [_key(job_id), _index_key(caller), _RUNNING, _QUEUED, _active_key(caller)]
        return bool(self._delete(keys=keys, args=[job_id]))

    def get(self, job_id: str) -> JobRecord | None:
        if not JOB_ID.match(job_id):
            return None
        return decode_record(self._redis.hgetall(_key(job_id)))

    def mark_dispatched(self, job_id: str) -> None:
        """Its Celery message is sent: no sweep needs to send it again."""
        self._redis.zrem(_OUTBOX, job_id)

    def undispatched(self, job_id: str) -> bool:
        """Whether the job's Celery message may never have been sent (a crash between the two writes)."""
        return self._redis.zscore(_OUTBOX, job_id) is not None

    def due_for_dispatch(self, older_than_seconds: float) -> list[str]:
        """Jobs queued ``older_than_seconds`` ago or more (Redis clock), their message not marked sent (a batch)."""
        return self._due(args=[older_than_seconds, _SWEEP_BATCH])

    def page(
        self, limit: int, cursor: str | None = None, status: JobStatus | None = None, caller: str | None = None
    ) -> tuple[list[JobRecord], str | None]:
        """``caller``'s jobs, newest first; returns a page and the cursor of the next one (None on the last page).

        With ``status``, the pages come from that status's own index: the cost is the page's, not the history's.
        """
        index = _index_key(caller) if status is None else _status_key(caller, status)
        top, after_id = _decode_cursor(cursor) if cursor else (float("inf"), None)
        found: list[tuple[JobRecord, float]] = []
        expired: list[str] = []
        offset = 0
        while len(found) <= limit:
            num = min(_LIST_BATCH, limit + 1)
            batch = self._redis.zrevrangebyscore(index, top, "-inf", start=offset, num=num, withscores=True)
            if not batch:
                break
            offset += len(batch)
            pipe = self._redis.pipeline(transaction=False)
            for job_id, _ in batch:
                pipe.hgetall(_key(job_id))
            for (job_id, score), fields in zip(batch, pipe.execute(), strict=True):
                if after_id is not None and score == top and job_id >= after_id:
                    continue  # at or before the cursor (equal scores come in descending id order)
                record = decode_record(fields)
                if record is None:
                    expired.append(job_id)
                elif status is None or record.status == status:
                    found.append((record, score))
        if expired:
            self._redis.zrem(index, *expired)
        page = found[:limit]
        next_cursor = _encode_cursor(*page[-1]) if len(found) > limit else None
        return [record for record, _ in page], next_cursor

    def cancel(self, job_id: str) -> CancelOutcome:
        if not JOB_ID.match(job_id):
            return "missing"
        return self._cancel(keys=[_key(job_id), _RUNNING])

    # -- the workers' side ---------------------------------------------------------------------

    def claim(self, job_id: str, worker: str, max_attempts: int, stale_after_seconds: float) -> Claim:
        """Take a queued job (or a running one whose worker went silent) for this worker.

        A duplicate delivery of a job that is running with a fresh heartbeat, or already
        finished, is answered without changing anything.
        """
        token = uuid.uuid4().hex
        args = _claim_args(token, worker, max_attempts, stale_after_seconds)
        outcome = self._claim(keys=[_key(job_id), _RUNNING], args=args)
        return Claim(outcome, token if outcome == "claimed" else None)

    def claim_next(self, worker: str, max_attempts: int, stale_after_seconds: float) -> tuple[str, str] | None:
        """Claim the next queued job, callers taking turns: the oldest job of the caller served longest ago.

        One caller's hundred jobs thus wait behind another caller's one, not the other way round.
        Returns (job id, owner token); None when nothing is queued.
        """
        token = uuid.uuid4().hex
        args = _claim_args(token, worker, max_attempts, stale_after_seconds)
        outcome, job_id = self._claim_next(keys=[_RUNNING], args=args)
        return (job_id, token) if outcome == "claimed" else None

    def release(self, job_id: str, token: str) -> bool:
        """Hand a claimed job back to the queue to run alone (``solo``), without counting the attempt.

        Like a new or requeued job it waits in the outbox until its message is marked sent.
        """
        return bool(self._release(keys=[_key(job_id), _RUNNING], args=[token]))

    def beat(self, job_id: str, token: str, step: int | None = None, steps: int | None = None) -> BeatState:
        """Prove the owner alive (and record progress); says whether to go on, stop, or let go."""
        args = [token, "", ""] if step is None else [token, step, steps]
        return self._beat(keys=[_key(job_id)], args=args)

    def check(self, job_id: str, token: str) -> BeatState:
        """What ``beat`` would say, without writing anything: cheap enough for every step."""
        status, owner, cancel_requested = self._redis.hmget(_key(job_id), "status", "owner", "cancel_requested")
        if status != "running" or owner != token:
            return "lost"
        return "cancel" if cancel_requested == "1" else "ok"

    def succeed(self, job_id: str, token: str, results: list[Picture], device: str, seconds: dict[str, float]) -> bool:
        fields = {
            "results": json.dumps([r.model_dump() for r in results]),
            "device": device,
            "seconds": json.dumps(seconds),
        }
        return self._finish_as(job_id, token, "succeeded", fields)

    def fail(self, job_id: str, token: str, error: JobError) -> bool:
        return self._finish_as(job_id, token, "failed", {"error": error.model_dump_json()})

    def mark_canceled(self, job_id: str, token: str) -> bool:
        return self._finish_as(job_id, token, "canceled", {})

    def running_ids(self) -> list[str]:
        return sorted(self._redis.smembers(_RUNNING))

    def count_by_status(self, callers: Iterable[str | None]) -> dict[JobStatus, int]:
        """Jobs in each status within the retention, summed over ``callers``' status indexes (one round trip)."""
        seconds, micros = self._redis.time()
        since = seconds + micros / 1e6 - self._retention
        statuses: tuple[JobStatus, ...] = get_args(JobStatus)
        pipe = self._redis.pipeline(transaction=False)
        for caller in callers:
            for status in statuses:
                pipe.zcount(_status_key(caller, status), since, "+inf")
        counts = dict.fromkeys(statuses, 0)
        for index, count in enumerate(pipe.execute()):
            counts[statuses[index % len(statuses)]] += count
        return counts

    def queued_sample(self, count: int) -> tuple[int, list[RenderSpec]]:
        """How many jobs are queued, and the requests of up to ``count`` of them drawn at random (a bounded read)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.scard(_QUEUED)
        pipe.srandmember(_QUEUED, count)
        queued, sample = pipe.execute()
        pipe = self._redis.pipeline(transaction=False)
        for job_id in sample:
            pipe.hget(_key(job_id), "request")
        return queued, [RenderSpec.model_validate_json(request) for request in pipe.execute() if request]

    def existing(self, job_ids: list[str]) -> set[str]:
        """Those of ``job_ids`` that still have a record."""
        pipe = self._redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.exists(_key(job_id))
        return {job_id for job_id, exists in zip(job_ids, pipe.execute(), strict=True) if exists}

    def prune(self) -> int:
        """Drop the ids of expired records from the queued, running and per-caller sets (they bound admission)."""
        sets = [_QUEUED, _RUNNING, *self._redis.scan_iter(match=_ACTIVE + "*", count=100)]
        pruned = 0
        for name in sets:
            members = list(self._redis.smembers(name))
            gone = set(members) - self.existing(members)
            if gone:
                pruned += self._redis.srem(name, *gone)
        return pruned

    def requeue_if_stale(self, job_id: str, stale_after_seconds: float) -> bool:
        """Hand a running job whose heartbeat is older than ``stale_after_seconds`` back to the queue and the outbox."""
        return bool(self._requeue(keys=[_key(job_id), _RUNNING], args=[job_id, stale_after_seconds]))

    def _finish_as(self, job_id: str, token: str, status: JobStatus, fields: Mapping[str, object]) -> bool:
        pairs = [item for pair in fields.items() for item in pair]
        return bool(self._finish(keys=[_key(job_id), _RUNNING], args=[token, status, *pairs]))


def _prelude(retention_seconds: int) -> str:
    constants = "".join(f"local {name} = {value!r}\n" for name, value in _LUA_CONSTANTS.items())
    return f"{constants}local RETENTION = {retention_seconds}\n" + NOTIFY_LUA + EMIT_LUA + _LUA_HELPERS


def _claim_args(token: str, worker: str, max_attempts: int, stale_after_seconds: float) -> list[object]:
    gave_up = JobError(
        type=WorkerLost.__name__,
        message=f"gave up after {max_attempts} attempts: the worker running this job stopped each time",
    )
    return [token, worker, max_attempts, stale_after_seconds, gave_up.model_dump_json()]


def _key(job_id: str) -> str:
    return _PREFIX + job_id


def _caller_name(caller: str | None) -> str:
    return caller or "-"  # the Lua who() names it the same way


def _index_key(caller: str | None) -> str:
    return _INDEX if caller is None else _CALLER_INDEX + caller


def _status_key(caller: str | None, status: JobStatus) -> str:
    return f"{_BY_STATUS}{_caller_name(caller)}:{status}"


def _active_key(caller: str | None) -> str:
    return _ACTIVE + _caller_name(caller)


def _idempotency_key(caller: str | None, key: str) -> str:
    if not key:
        return ""
    return f"{_IDEMPOTENCY}{caller or '-'}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def decode_record(fields: dict[str, str]) -> JobRecord | None:
    """A record from its Redis hash (or from a snapshot of it, as the webhook outbox keeps); None if empty."""
    if not fields:
        return None
    values: dict[str, object] = {name: value for name, value in fields.items() if value != ""}
    for name in _JSON_FIELDS:
        if name in values:
            values[name] = json.loads(values[name])  # type: ignore[arg-type]
    for name in ("created_at", "started_at", "finished_at", "heartbeat_at"):
        if name in values:
            values[name] = float(values[name])  # type: ignore[arg-type]
    return JobRecord.model_validate(values)


def _encode_cursor(record: JobRecord, score: float) -> str:
    return base64.urlsafe_b64encode(f"{score!r}:{record.id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, job_id = text.split(":")
        if _CURSOR_SCORE.match(score) and JOB_ID.match(job_id):
            return float(score), job_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidCursor(f"cursor {cursor!r} is not one this service handed out")
