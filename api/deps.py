"""What routes get injected (settings, stores, dispatcher and rate limiter, made once in the app factory),
and the look-ups a route makes before validating a request (:func:`submit_facts`)."""

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from api.dispatch import Dispatcher
from api.layer_questions import LayerQuestions
from api.problems import not_ready
from api.rate_limit import RateLimiter
from api.validation import StartImage, SubmitFacts
from core.catalog import ModelEntry
from core.errors import ForbiddenTarget
from core.settings import Settings
from core.spec import ImageInit, RenderSpec
from core.store import Stores
from core.store.catalog import AsyncCatalogReader
from core.store.connection import connect, redis_url
from core.store.files import UPLOAD_SOURCE
from core.store.picture_requests import PictureRequests
from core.webhook_targets import resolve_target

NO_CATALOG = "no worker has published the model catalog yet; start a worker (`filterviz worker`)"


@dataclass(frozen=True)
class Services:
    settings: Settings
    stores: Stores
    dispatcher: Dispatcher
    rate_limiter: RateLimiter | None  # None: no limit configured
    catalog_reader: AsyncCatalogReader = field(init=False)
    layer_questions: LayerQuestions = field(init=False)
    picture_requests: PictureRequests = field(init=False)

    def __post_init__(self) -> None:
        reader = AsyncCatalogReader(redis_url(self.settings))
        requests = PictureRequests(connect(redis_url(self.settings)), self.settings.retention_seconds)
        object.__setattr__(self, "picture_requests", requests)
        questions = LayerQuestions(
            reader, self.dispatcher, self.settings.max_layer_questions, self.settings.describe_timeout_seconds
        )
        object.__setattr__(self, "catalog_reader", reader)  # frozen: set once, here
        object.__setattr__(self, "layer_questions", questions)

    def served_models(self) -> dict[str, ModelEntry]:
        """The published models this deployment serves, in the order of Settings.models.

        Answers 503 while no worker has published a catalog: nothing could be validated.
        """
        published = self.stores.catalog.models()
        if not published:
            raise not_ready(NO_CATALOG)
        return {name: published[name] for name in self.settings.models if name in published}

    def loading_models(self) -> list[str]:
        """Served models no worker has published yet (workers publish one model after another)."""
        published = self.stores.catalog.published_names()
        return [name for name in self.settings.models if name not in published]

    def require_published(self, model: str) -> set[str]:
        """503 + Retry-After while nothing is published, or ``model`` is served but still loading: "try
        again", not "unknown model". Returns the published models' names."""
        published = self.stores.catalog.published_names()
        if not published:
            raise not_ready(NO_CATALOG)
        if model in self.settings.models and model not in published:
            raise not_ready(still_loading([model]))
        return published


def still_loading(models: list[str]) -> str:
    return f"still loading: the workers have not published {', '.join(models)} yet; retry shortly"


def submit_facts(services: Services, spec: RenderSpec, webhook: str | None, caller: str | None) -> SubmitFacts:
    """What validating ``spec`` from ``caller`` needs from Redis, the upload directory and DNS, looked up once."""
    return SubmitFacts(
        models=services.served_models(),
        start_image=start_image(services.stores, spec, caller),
        webhook_refusal=webhook_refusal(webhook, services.settings),
    )


def start_image(stores: Stores, spec: RenderSpec, caller: str | None) -> StartImage | None:
    """The request's start image as the uploads know it; None for a request that starts from noise."""
    if not isinstance(spec.init, ImageInit):
        return None
    image_id = spec.init.image_id
    usable = stores.upload_records.owned_by(image_id, caller) and stores.uploads.exists(image_id, UPLOAD_SOURCE)
    return StartImage(usable=usable, size=stores.upload_records.size(image_id))


def webhook_refusal(webhook: str | None, settings: Settings) -> ForbiddenTarget | None:
    """Why ``webhook`` may not receive the job (its host resolved, DNS), where this deployment sends webhooks."""
    if webhook is None or settings.webhook_secret is None:
        return None  # nothing to check, or validation refuses any webhook
    try:
        resolve_target(webhook, settings.webhook_allow_private)
    except ForbiddenTarget as refusal:
        return refusal
    return None


async def get_services(request: Request) -> Services:
    """A coroutine, so that reading an attribute costs no trip to the threadpool."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
