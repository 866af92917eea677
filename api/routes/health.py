"""Liveness and readiness probes."""

from fastapi import APIRouter

from api.deps import ServicesDep
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
    recently, and the model catalog is published (so jobs can be validated)."""
    workers = services.stores.workers.alive(services.settings.stale_after_seconds)
    if not workers:
        raise not_ready("no live worker; start one with `filterviz worker`")
    services.served_models()
    return Readiness(status="ready", workers=workers)
