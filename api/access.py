"""Who is calling: optional API keys (``Authorization: Bearer <key>``) and each caller's request budget.

Keys are configured as SHA-256 digests (FILTERVIZ_API_KEYS), so the settings never hold a usable
key. A caller is named by the first 16 hex digits of its key's digest; with no keys configured
every caller is anonymous (None) and shares one budget.
"""

import hashlib
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ServicesDep
from api.problems import Problem, too_many

CALLER_ID_LENGTH = 16

bearer = HTTPBearer(
    auto_error=False,
    description="An API key. Required on every /v1 route when the deployment configures keys (FILTERVIZ_API_KEYS).",
)


def caller_id(key_digest: str) -> str:
    return key_digest[:CALLER_ID_LENGTH]


def authorize(
    services: ServicesDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str | None:
    """The caller (None without configured keys), after its key and its request budget are checked."""
    caller = _authenticate(set(services.settings.api_keys), credentials)
    limiter = services.rate_limiter
    if limiter is not None and not (verdict := limiter.hit(caller)).allowed:
        detail = f"more than {limiter.per_minute} requests in a minute; try again in {verdict.reset_seconds} s"
        raise too_many("Too Many Requests", detail, "/problems/rate-limited", retry_after=verdict.reset_seconds)
    return caller


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
