"""The FastAPI application factory: ``uvicorn --factory api.app:create_app``."""

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.access import install_guess_limit
from api.decoding import install_decode_budget
from api.deps import Services
from api.dispatch import Dispatcher
from api.metrics import install_metrics
from api.problems import install_problem_handlers
from api.rate_limit import RateLimiter
from api.routes import datasets, events, examples, gallery, health, images, jobs, models, pictures
from api.slow_clients import BodyTimeoutMiddleware
from core.settings import Settings
from core.store import Stores
from core.store.connection import connect, redis_url
from core.store.job_events import JobEventHub

DESCRIPTION = """\
See what the filters of a convolutional network respond to.

POST a render request to `/v1/jobs`, poll `GET /v1/jobs/{id}` until it has `succeeded`, then
download one PNG per filter (`results[].url`) and a contact sheet (`grid_url`). Errors are
RFC 9457 `application/problem+json` documents.

Where the deployment configures API keys, every `/v1` route needs `Authorization: Bearer <key>`
and a key sees only its own jobs and images. `Idempotency-Key` makes a retried POST /v1/jobs safe;
a job's `webhook` receives its start and end, signed as Standard Webhooks specify.
"""

CORS_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "If-None-Match"]
EXPOSED_HEADERS = ["Location", "Retry-After", "ETag", "Idempotent-Replayed", "WWW-Authenticate"]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    url = redis_url(settings)
    limiter = RateLimiter(connect(url), settings.rate_limit_per_minute) if settings.rate_limit_per_minute else None
    services = Services(settings, Stores.from_settings(settings), Dispatcher(url), limiter)
    app = FastAPI(title="filterviz", version="1.0", description=DESCRIPTION)
    app.state.services = services
    app.state.job_events = JobEventHub(url, settings.max_event_streams)
    install_decode_budget(app, settings)
    install_guess_limit(app, settings)
    install_problem_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=CORS_HEADERS,
            expose_headers=EXPOSED_HEADERS,
        )
    app.add_middleware(BodyTimeoutMiddleware, seconds=settings.request_read_timeout_seconds)
    install_metrics(app, settings, services.stores)  # outermost: it times the other middlewares' answers too
    for module in (jobs, events, images, datasets, examples, models, pictures, health, gallery):
        app.include_router(module.router)
    return app
