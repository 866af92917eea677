"""The model catalog, as the workers published it."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.access import authorize
from api.deps import Services, ServicesDep
from api.problems import FieldError, invalid, not_found, not_ready, problem_responses
from api.schemas import ModelLayers, ModelSummary
from api.validation import size_message
from core.catalog import LayerEntry, ModelEntry
from core.errors import list_valid

router = APIRouter(
    prefix="/v1/models", tags=["models"], dependencies=[Depends(authorize)], responses=problem_responses(401, 429)
)


@router.get("", response_model=list[ModelSummary], responses=problem_responses(503))
def list_models(services: ServicesDep) -> list[ModelSummary]:
    """The models this deployment serves, and whether the workers have their weights."""
    return [ModelSummary.from_entry(entry) for entry in services.served_models().values()]


@router.get("/{name}/layers", response_model=ModelLayers, responses=problem_responses(404, 422, 503))
def model_layers(
    name: str,
    services: ServicesDep,
    size: Annotated[int | None, Query(description="input side in pixels; default: the model's default size")] = None,
) -> ModelLayers:
    """Every layer that can be visualized, with its output shape at ``size`` (a render size, see the limits)."""
    models = services.served_models()
    entry = models.get(name)
    if entry is None:
        raise not_found(f"unknown model {name!r}; available: {list_valid(list(models))}")
    side = size or entry.default_size
    return ModelLayers(model=name, size=(side, side), layers=_layers_at(services, entry, side))


def _layers_at(services: Services, entry: ModelEntry, side: int) -> list[LayerEntry]:
    """The published layers at the default size; at another size, a worker's (cached) answer."""
    if side == entry.default_size:
        return entry.layers
    settings = services.settings
    if not settings.min_size <= side <= settings.max_size:
        msg = size_message((side, side), settings)
        raise invalid([FieldError(loc=["query", "size"], msg=msg, type="size_out_of_range")])
    size = (side, side)
    catalog, timeout = services.stores.catalog, settings.describe_timeout_seconds
    answer = catalog.layers(entry.name, size)
    if answer is None:
        services.dispatcher.describe(entry.name, size, expires_seconds=timeout)
        answer = catalog.wait_for_layers(entry.name, size, timeout)
    if answer is None:
        raise not_ready(f"no worker listed the layers of {entry.name} at {side}x{side} within {timeout:g} s")
    if answer.error is not None:
        raise invalid([FieldError(loc=["query", "size"], msg=answer.error, type="size_out_of_range")])
    return answer.layers
