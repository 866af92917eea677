"""Which job renders a missing picture: one job however many clients ask for it at once. Torch-free.

A key ``filterviz:picture:<caller or ->:<cache key>`` holds the id of the job that renders the
picture. The first asker takes it with SET NX and a reservation token, queues the job, then puts
the job's id in place of the token; askers meanwhile wait (briefly, bounded) for the id. A holder
whose job has finished, failed or expired is released by the next asker, who then tries again.
Keys are per caller, because the job created is the caller's (another caller could not read it).
"""

import time
import uuid

from redis import Redis

_PREFIX = "filterviz:picture:"
_RESERVED = "reserved:"  # + a token: an asker is queuing the job
RESERVATION_SECONDS = 30  # a reservation an asker died holding lapses after this
_POLL_SECONDS = 0.02

# compare-and-set / compare-and-delete: only the value's owner changes it
_ASSIGN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return false
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class PictureRequests:
    def __init__(self, redis: Redis, hold_seconds: int) -> None:
        """``hold_seconds``: how long a job id is held at most (a job's record outlives it by no more)."""
        self._redis, self._hold = redis, hold_seconds
        self._assign = redis.register_script(_ASSIGN)
        self._release = redis.register_script(_RELEASE)

    def reserve(self, cache_key: str, caller: str | None) -> str | None:
        """A reservation token if no one holds the picture, else None."""
        token = _RESERVED + uuid.uuid4().hex
        taken = self._redis.set(_key(cache_key, caller), token, nx=True, ex=RESERVATION_SECONDS)
        return token if taken else None

    def assign(self, cache_key: str, caller: str | None, token: str, job_id: str) -> None:
        """Put the job in place of the reservation ``token``."""
        self._assign(keys=[_key(cache_key, caller)], args=[token, job_id, self._hold])

    def release(self, cache_key: str, caller: str | None, value: str) -> None:
        """Let the next asker try again, if ``value`` (a token or a job id) still holds the picture."""
        self._release(keys=[_key(cache_key, caller)], args=[value])

    def holder(self, cache_key: str, caller: str | None, wait_seconds: float) -> str | None:
        """The id of the job that renders the picture, None when no one holds it; a reservation is
        waited on for at most ``wait_seconds`` (TimeoutError after that)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            value = self._redis.get(_key(cache_key, caller))
            if value is None or not value.startswith(_RESERVED):
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the picture {cache_key} is still being queued by another request")
            time.sleep(_POLL_SECONDS)


def _key(cache_key: str, caller: str | None) -> str:
    return f"{_PREFIX}{caller or '-'}:{cache_key}"
