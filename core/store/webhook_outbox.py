"""Webhook events waiting to be delivered: a transactional outbox in Redis. Torch-free.

The job store's state-change scripts call :data:`NOTIFY_LUA`'s ``notify`` in the same Lua script
that changes the state, so an event is recorded if and only if the change happened, with a
snapshot of the job as it was then. A sender takes due events under a lease (an event whose sender
died becomes due again when the lease ends), then acknowledges or reschedules them: delivery is
at least once, and the ``webhook-id`` (the event id) is the same on every attempt.
"""

import json
from dataclasses import dataclass

from redis import Redis

_EVENTS = "filterviz:webhooks:events"  # hash: event id -> {"type", "timestamp", "fields"} json
_DUE = "filterviz:webhooks:due"  # sorted set: event id scored by when to (re)try it (Redis clock)
_ATTEMPTS = "filterviz:webhooks:attempts"  # hash: event id -> delivery attempts so far

# Defines notify(key, event, t): call it with a job's key, 'started' or the final status, and now().
NOTIFY_LUA = f"""
local function notify(key, event, t)
  if not redis.call('HGET', key, 'webhook') then return end
  local id = 'msg_' .. redis.call('HGET', key, 'id') .. '_' .. event .. '_' .. redis.call('HGET', key, 'attempts')
  local snapshot = cjson.encode({{type = 'job.' .. event, timestamp = t, fields = redis.call('HGETALL', key)}})
  redis.call('HSET', {_EVENTS!r}, id, snapshot)
  redis.call('ZADD', {_DUE!r}, t, id)
end
"""

# ARGV: how many, lease seconds. Returns id, attempt, snapshot, id, attempt, snapshot, ...
_TAKE = f"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local taken = {{}}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', {_DUE!r}, '-inf', now, 'LIMIT', 0, ARGV[1])) do
  redis.call('ZADD', {_DUE!r}, now + tonumber(ARGV[2]), id)
  local attempt = redis.call('HINCRBY', {_ATTEMPTS!r}, id, 1)
  table.insert(taken, id)
  table.insert(taken, attempt)
  table.insert(taken, redis.call('HGET', {_EVENTS!r}, id) or '')
end
return taken
"""

# ARGV: id, delay seconds.
_RETRY = f"""
local t = redis.call('TIME')
redis.call('ZADD', {_DUE!r}, tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[2]), ARGV[1])
"""


# ARGV: id, delay seconds. A taken event handed back untried: its attempt does not count.
_PUT_BACK = f"""
local t = redis.call('TIME')
if redis.call('HINCRBY', {_ATTEMPTS!r}, ARGV[1], -1) <= 0 then redis.call('HDEL', {_ATTEMPTS!r}, ARGV[1]) end
if redis.call('HEXISTS', {_EVENTS!r}, ARGV[1]) == 1 then
  redis.call('ZADD', {_DUE!r}, tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[2]), ARGV[1])
end
"""


@dataclass(frozen=True)
class OutboxEvent:
    id: str  # the webhook-id: the same on every attempt
    type: str  # job.started, job.succeeded, job.failed or job.canceled
    timestamp: float  # when the change happened (Redis clock)
    fields: dict[str, str]  # the job's Redis hash at that moment
    attempt: int  # 1 on the first delivery


class WebhookOutbox:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._take, self._retry = redis.register_script(_TAKE), redis.register_script(_RETRY)
        self._put_back = redis.register_script(_PUT_BACK)

    def take_due(self, limit: int, lease_seconds: float) -> list[OutboxEvent]:
        """Up to ``limit`` due events, each leased for ``lease_seconds`` (due again after, if not settled)."""
        flat = self._take(args=[limit, lease_seconds])
        events = []
        for event_id, attempt, raw in zip(flat[::3], flat[1::3], flat[2::3], strict=True):
            if not raw:  # settled by another sender meanwhile
                self.settle(event_id)
                continue
            snapshot = json.loads(raw)
            pairs = snapshot["fields"]
            fields = dict(zip(pairs[::2], pairs[1::2], strict=True))
            events.append(OutboxEvent(event_id, snapshot["type"], float(snapshot["timestamp"]), fields, int(attempt)))
        return events

    def settle(self, event_id: str) -> None:
        """Delivered, or given up on: forget the event."""
        pipe = self._redis.pipeline()
        pipe.zrem(_DUE, event_id)
        pipe.hdel(_EVENTS, event_id)
        pipe.hdel(_ATTEMPTS, event_id)
        pipe.execute()

    def retry_later(self, event_id: str, delay_seconds: float) -> None:
        self._retry(args=[event_id, delay_seconds])

    def put_back(self, event_id: str, delay_seconds: float) -> None:
        """Hand a taken event back untried (its target is busy): due again after ``delay_seconds``."""
        self._put_back(args=[event_id, delay_seconds])

    def pending(self) -> int:
        return self._redis.zcard(_DUE)
