"""Who is calling: optional API keys (``Authorization: Bearer <key>``) and each caller's request budget.

Keys are configured as SHA-256 digests (FILTERVIZ_API_KEYS), so the settings never hold a usable
key. A caller is named by the first 16 hex digits of its key's digest; with no keys configured
every caller is anonymous (None) and shares one budget. Failed key attempts are counted per client
address, and an address over its budget is refused before its key is checked.
"""

import hashlib
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ServicesDep
from api.problems import Problem, too_many
from api.rate_limit import RateLimiter, auth_failure_limiter
from core.settings import Settings
from core.store.connection import connect, redis_url

CALLER_ID_LENGTH = 16

bearer = HTTPBearer(
    auto_error=False,
    description="An API key. Required on every /v1 route when the deployment configures keys (FILTERVIZ_API_KEYS).",
)


def caller_id(key_digest: str) -> str:
    return key_digest[:CALLER_ID_LENGTH]


def install_guess_limit(app: FastAPI, settings: Settings) -> None:
    """Where keys are configured, failed attempts per client address are counted (None: nothing to guess)."""
    limit = settings.auth_failures_per_minute
    app.state.auth_failures = auth_failure_limiter(connect(redis_url(settings)), limit) if settings.api_keys else None


def authorize(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str | None:
    """The caller (None without configured keys), after its key and its request budget are checked.

    An address that failed too often within a minute is refused before its key is even looked at,
    so guessing keys costs a guesser a minute per FILTERVIZ_AUTH_FAILURES_PER_MINUTE guesses."""
    failures: RateLimiter | None = request.app.state.auth_failures
    address = request.client.host if request.client else None
    if failures is not None:
        _refuse_guessers(failures, address)
    try:
        caller = _authenticate(set(services.settings.api_keys), credentials)
    except Problem:
        if failures is not None and credentials is not None:  # a key was sent, and it is not one
            failures.hit(address)
        raise
    limiter = services.rate_limiter
    if limiter is not None and not (verdict := limiter.hit(caller)).allowed:
        detail = f"more than {limiter.per_minute} requests in a minute; try again in {verdict.reset_seconds} s"
        raise too_many("Too Many Requests", detail, "/problems/rate-limited", retry_after=verdict.reset_seconds)
    return caller


def _refuse_guessers(failures: RateLimiter, address: str | None) -> None:
    if not (verdict := failures.peek(address)).allowed:
        detail = (
            f"{failures.per_minute} failed API-key attempts from this address within a minute; "
            f"try again in {verdict.reset_seconds} s"
        )
        raise too_many("Too Many Failed Attempts", detail, "/problems/too-many-failed-attempts", verdict.reset_seconds)


def _authenticate(digests: set[str], credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if not digests:
        return None
    if credentials is None:
        raise _unauthorized("this API needs an API key: send `Authorization: Bearer <key>`")
    digest = hashlib.sha256(credentials.credentials.encode()).hexdigest()
    if digest not in digests:  # a set lookup on the digest: its timing tells nothing about a key
        raise _unauthorized("the API key is not valid", error='error="invalid_token"')
    return caller_id(digest)


def _unauthorized(detail: str, error: str = "") -> Problem:
    challenge = 'Bearer realm="filterviz"' + (f", {error}" if error else "")
    return Problem(401, "Unauthorized", detail, type="/problems/unauthorized", headers={"WWW-Authenticate": challenge})


CallerDep = Annotated[str | None, Depends(authorize)]
