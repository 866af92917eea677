"""Liveness and readiness probes."""

from fastapi import APIRouter

from api.deps import ServicesDep, still_loading
from api.problems import not_ready, problem_responses
from api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
def readyz(services: ServicesDep) -> Readiness:
    """Redis answers (else the RedisError handler answers 503), a worker stamped itself alive
    recently, and every served model is published, so that any request for one can be validated."""
    workers = services.stores.workers.alive(services.settings.stale_after_seconds)
    if not workers:
        raise not_ready("no live worker; start one with `filterviz worker`")
    loading = services.loading_models()
    if loading:
        raise not_ready(still_loading(loading))
    return Readiness(status="ready", workers=workers)
