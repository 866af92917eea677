"""Requests per minute per caller, counted in Redis so every API process shares the budget. Torch-free.

A fixed one-minute window per caller: simple, one round trip, and the window's end is the honest
Retry-After.
"""

from dataclasses import dataclass

from redis import Redis

_WINDOW = "filterviz:rate:"  # + caller or '-': requests in the current window, expiring with it
_WINDOW_MS = 60_000

# KEYS: counter. ARGV: window ms. Returns {count, ms left}.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True)
class RateVerdict:
    allowed: bool
    remaining: int
    reset_seconds: int  # until the window ends


class RateLimiter:
    def __init__(self, redis: Redis, per_minute: int) -> None:
        self._hit = redis.register_script(_HIT)
        self.per_minute = per_minute

    def hit(self, caller: str | None) -> RateVerdict:
        count, ms_left = self._hit(keys=[_WINDOW + (caller or "-")], args=[_WINDOW_MS])
        reset = max(1, -(-max(ms_left, 0) // 1000))  # whole seconds, rounded up
        return RateVerdict(count <= self.per_minute, max(0, self.per_minute - count), reset)
