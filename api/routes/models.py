"""The model catalog, as the workers published it."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from api.access import authorize
from api.deps import Services, ServicesDep
from api.problems import FieldError, invalid, not_found, not_ready, problem_responses
from api.schemas import ModelLayers, ModelSummary
from api.validation import size_message, unavailable_model_error
from core.catalog import LayerAnswer, LayerEntry, ModelEntry
from core.errors import list_valid

router = APIRouter(
    prefix="/v1/models", tags=["models"], dependencies=[Depends(authorize)], responses=problem_responses(401, 429)
)


@router.get("", response_model=list[ModelSummary], responses=problem_responses(503))
def list_models(services: ServicesDep) -> list[ModelSummary]:
    """The models this deployment serves, whether the workers have their weights, and why a model they
    found unusable at start is unavailable."""
    return [ModelSummary.from_entry(entry) for entry in services.served_models().values()]


@router.get("/{name}/layers", response_model=ModelLayers, responses=problem_responses(404, 422, 503))
async def model_layers(
    name: str,
    services: ServicesDep,
    size: Annotated[int | None, Query(description="input side in pixels; default: the model's default size")] = None,
) -> Response:
    """Every layer that can be visualized, with its output shape at ``size`` (a render size, see the limits).

    A size not listed yet is asked of a worker; neither the reads nor that wait hold a server thread.
    A model the workers found unavailable has no layers: 422 with the reason.
    """
    entry = await _served_entry(services, name)
    if not entry.available:
        raise invalid([unavailable_model_error(entry, ["path", "name"])])
    if size is None or size == entry.default_size:
        return _layers_response(name, entry.default_size, entry.layers)
    settings = services.settings
    if not settings.min_size <= size <= settings.max_size:
        msg = size_message((size, size), settings)
        raise invalid([FieldError(loc=["query", "size"], msg=msg, type="size_out_of_range")])
    side = (size, size)
    answer = await services.catalog_reader.layers(name, side)
    if answer is None:
        answer = await services.layer_questions.ask(name, side)
    if answer is None:
        timeout = settings.describe_timeout_seconds
        raise not_ready(f"no worker listed the layers of {name} at {size}x{size} within {timeout:g} s")
    return _layers_response(name, size, _answered(answer))


async def _served_entry(services: Services, name: str) -> ModelEntry:
    """The published entry of a served model; 503 while it is still loading, 404 for a model not served."""
    entry = await services.catalog_reader.model(name) if name in services.settings.models else None
    if entry is None:
        published = await run_in_threadpool(services.require_published, name)
        available = [model for model in services.settings.models if model in published]
        raise not_found(f"unknown model {name!r}; available: {list_valid(available)}")
    return entry


def _answered(answer: LayerAnswer) -> list[LayerEntry]:
    """A worker's answer: the layers, or why the size does not work for this model (422)."""
    if answer.error is not None:
        raise invalid([FieldError(loc=["query", "size"], msg=answer.error, type="size_out_of_range")])
    return answer.layers


def _layers_response(name: str, side: int, layers: list[LayerEntry]) -> Response:
    body = ModelLayers(model=name, size=(side, side), layers=layers).model_dump_json()
    return Response(body, media_type="application/json")
