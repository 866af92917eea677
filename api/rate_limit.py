"""Request budgets counted in Redis, so every API process shares them. Torch-free.

A fixed one-minute window per name: simple, one round trip, and the window's end is the honest
Retry-After. Two budgets use it: requests per caller, and failed API-key attempts per client
address (a key guesser's budget).
"""

from dataclasses import dataclass

from redis import Redis

_REQUESTS = "filterviz:rate:"  # + caller or '-': requests in the current window, expiring with it
_AUTH_FAILURES = "filterviz:auth-failures:"  # + client address: failed API-key attempts in the window
_WINDOW_MS = 60_000

# KEYS: counter. ARGV: window ms. Returns {count, ms left}.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""

# KEYS: counter. Returns {count, ms left}, counting nothing.
_PEEK = """
return {tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True)
class RateVerdict:
    allowed: bool
    remaining: int
    reset_seconds: int  # until the window ends


class RateLimiter:
    """At most ``per_minute`` counted events per name and window."""

    def __init__(self, redis: Redis, per_minute: int, prefix: str = _REQUESTS) -> None:
        self._hit, self._peek = redis.register_script(_HIT), redis.register_script(_PEEK)
        self.per_minute, self._prefix = per_minute, prefix

    def hit(self, name: str | None) -> RateVerdict:
        """Count one event; allowed while the window holds at most ``per_minute``."""
        count, ms_left = self._hit(keys=[self._prefix + (name or "-")], args=[_WINDOW_MS])
        return self._verdict(count, ms_left, count <= self.per_minute)

    def peek(self, name: str | None) -> RateVerdict:
        """Without counting: allowed while fewer than ``per_minute`` were counted in the window."""
        count, ms_left = self._peek(keys=[self._prefix + (name or "-")])
        return self._verdict(count, ms_left, count < self.per_minute)

    def _verdict(self, count: int, ms_left: int, allowed: bool) -> RateVerdict:
        reset = max(1, -(-max(ms_left, 0) // 1000))  # whole seconds, rounded up
        return RateVerdict(allowed, max(0, self.per_minute - count), reset)


def auth_failure_limiter(redis: Redis, per_minute: int) -> RateLimiter:
    return RateLimiter(redis, per_minute, _AUTH_FAILURES)
