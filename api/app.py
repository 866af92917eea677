"""The FastAPI application factory: ``uvicorn --factory api.app:create_app``."""

from fastapi import FastAPI

from api.deps import Services
from api.dispatch import Dispatcher
from api.problems import install_problem_handlers
from api.routes import health, images, jobs, models
from core.redis_client import redis_url
from core.settings import Settings
from core.stores import Stores

DESCRIPTION = """\
See what the filters of a convolutional network respond to.

POST a render request to `/v1/jobs`, poll `GET /v1/jobs/{id}` until it has `succeeded`, then
download one PNG per filter (`results[].url`) and a contact sheet (`grid_url`). Errors are
RFC 9457 `application/problem+json` documents.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    services = Services(settings, Stores.from_settings(settings), Dispatcher(redis_url(settings)))
    app = FastAPI(title="filterviz", version="1.0", description=DESCRIPTION)
    app.state.services = services
    install_problem_handlers(app)
    for module in (jobs, images, models, health):
        app.include_router(module.router)
    return app
