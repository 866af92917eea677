"""What routes get injected: settings, stores, dispatcher and rate limiter, made once in the app factory."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.dispatch import Dispatcher
from api.problems import not_ready
from core.catalog import ModelEntry
from core.rate_limit import RateLimiter
from core.settings import Settings
from core.stores import Stores


@dataclass(frozen=True)
class Services:
    settings: Settings
    stores: Stores
    dispatcher: Dispatcher
    rate_limiter: RateLimiter | None  # None: no limit configured

    def served_models(self) -> dict[str, ModelEntry]:
        """The published models this deployment serves, in the order of Settings.models.

        Answers 503 while no worker has published a catalog: nothing could be validated.
        """
        published = self.stores.catalog.models()
        if not published:
            raise not_ready("no worker has published the model catalog yet; start a worker (`filterviz worker`)")
        return {name: published[name] for name in self.settings.models if name in published}


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
