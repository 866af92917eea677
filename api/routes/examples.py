"""Dataset examples: per filter, the images of a set that excite it most, with the crop around the strongest
position. Served from the layer's examples index, or built once (on the model's queue) however many ask."""

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.access import CallerDep, authorize
from api.deps import Services, ServicesDep
from api.picture_response import content_response
from api.problems import FieldError, invalid, not_found, problem_responses
from api.routes.datasets import DATASET_ID, visible_dataset
from core.catalog import LayerEntry, find_layer
from core.demo_images import DEMO_DATASET
from core.errors import WeightsUnavailable
from core.example_index import ExampleIndex, index_key
from core.spec import FILTER_SPEC_HELP, parse_filters
from core.store.datasets import ImageSet
from core.store.example_indexes import BuildState, BuildStatus

router = APIRouter(tags=["examples"], dependencies=[Depends(authorize)], responses=problem_responses(401, 429))

KEY = r"^[0-9a-f]{32}$"


class ExampleEntry(BaseModel):
    image: str = Field(description="the image's name in the set")
    image_url: str = Field(description="the image as stored (normalized)")
    activation: float = Field(description="the filter's largest activation over the image's positions")
    position: tuple[int, int] = Field(description="(y, x) of that activation in the layer's output")
    box: tuple[int, int, int, int] = Field(description="(left, top, right, bottom) of its receptive field in the view")
    crop_url: str = Field(description="the view cut to that receptive field")
    thumbnail_url: str = Field(description="the image's view (the square the network saw), small")


class FilterExamples(BaseModel):
    filter: int
    examples: list[ExampleEntry] = Field(description="best first")


class LayerExamples(BaseModel):
    model: str
    layer: str
    dataset: str
    k: int
    side: int = Field(description="each image was ranked as its view: short side scaled to this, central square")
    ranking: str = Field(default="max", description="an image's score: the filter's largest activation over positions")
    receptive_field: dict[str, dict[str, float | int | None]] = Field(
        description="per axis: position i's field starts at origin + i * stride and spans extent pixels of the view "
        "(extent null: the whole view), measured by gradient"
    )
    filters: list[FilterExamples]


class ExamplesBuild(BaseModel):
    key: str
    status: BuildStatus
    model: str
    layer: str
    dataset: str
    images: int
    done: int = Field(description="images through the network so far")
    error: str | None = None
    url: str
    examples_url: str = Field(description="where the examples are once the build has succeeded")

    @classmethod
    def of(cls, state: BuildState) -> "ExamplesBuild":
        return cls(
            **state.model_dump(include={"key", "status", "model", "layer", "dataset", "images", "done", "error"}),
            url=build_url(state.key),
            examples_url=f"/v1/models/{state.model}/layers/{state.layer}/examples?dataset={state.dataset}",
        )


def build_url(key: str) -> str:
    return f"/v1/example-builds/{key}"


@router.get(
    "/v1/models/{model}/layers/{layer}/examples",
    response_model=LayerExamples,
    responses={
        202: {"model": ExamplesBuild, "description": "no index yet: the build that makes it (Location: its URL)"},
        **problem_responses(404, 422, 503),
    },
)
def get_examples(
    services: ServicesDep,
    caller: CallerDep,
    model: str,
    layer: Annotated[str, Path(max_length=100)],
    dataset: Annotated[
        str, Query(pattern=DATASET_ID, description="an image set's id; 'demo': the built-in one")
    ] = "demo",
    filters: Annotated[str, Query(max_length=4096, description=FILTER_SPEC_HELP)] = "0-7",
    build: Annotated[bool, Query(description="false: a 404 instead of starting a build when there is no index")] = True,
) -> Response:
    """The top-k images of the set per filter, with their activation, thumbnail and receptive-field crop.

    The first request for a (model, weights, layer, set) is a 202 with the build of the layer's index (one
    build however many ask); once it has succeeded any filters of the layer are served from it, no model pass."""
    services.require_published(model)
    entry = services.served_models().get(model)
    if entry is None:
        raise invalid([FieldError(loc=["path", "model"], msg=f"no model {model} is served", type="unknown_model")])
    found = find_layer(entry.layers, layer)
    if found is None:
        raise invalid(
            [FieldError(loc=["path", "layer"], msg=f"model {model} has no layer {layer!r}", type="unknown_layer")]
        )
    wanted = _filters(filters, found, services.settings.max_filters)
    if entry.weights_identity is None:
        raise WeightsUnavailable(f"the workers have no weights for {model} ({entry.weights_file})")
    if not build and dataset == DEMO_DATASET and services.stores.datasets.get(DEMO_DATASET) is None:
        raise not_found("the demo set is made on the first request that may build an index (build=true)")
    record = visible_dataset(services, dataset, caller)
    settings = services.settings
    key = index_key(
        model,
        entry.weights_identity,
        found.name,
        record.id,
        record.fingerprint,
        settings.examples_top_k,
        settings.examples_size,
    )
    index = services.stores.example_indexes.get(record.id, key)
    if index is not None:
        services.stores.datasets.keep(record.id)
        return Response(_examples(index, key, wanted).model_dump_json(), media_type="application/json")
    if not build and _idle(services.stores.example_indexes.state(key)):
        raise not_found(f"no examples index of {model} {found.name} for the image set {record.id} yet")
    state = _build(services, key, model, found.name, entry.weights_identity, record)
    return Response(
        ExamplesBuild.of(state).model_dump_json(),
        status_code=202,
        media_type="application/json",
        headers={"Location": build_url(key)},
    )


@router.get("/v1/example-builds/{key}", response_model=ExamplesBuild, responses=problem_responses(404))
def get_build(services: ServicesDep, caller: CallerDep, key: Annotated[str, Path(pattern=KEY)]) -> ExamplesBuild:
    """An examples index's build: queued, running (images done so far), succeeded or failed (why)."""
    state = services.stores.example_indexes.state(key)
    if state is None or services.stores.datasets.visible(state.dataset, caller) is None:
        raise not_found(f"no examples build {key}: never asked for, lapsed, or another API key's")
    return ExamplesBuild.of(state)


@router.get(
    "/v1/datasets/{dataset}/examples/{key}/{sha256}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "a crop or thumbnail"},
        **problem_responses(404, 500),
    },
)
def get_example_picture(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    dataset: Annotated[str, Path(pattern=DATASET_ID)],
    key: Annotated[str, Path(pattern=KEY)],
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
) -> Response:
    """A crop or thumbnail of an examples index, by its content hash: immutable."""
    record = visible_dataset(services, dataset, caller)
    data = services.stores.example_indexes.picture(record.id, key, sha256)  # DamagedPicture: a 500 that says so
    if data is None:
        raise not_found(f"no picture {sha256} in examples index {key} of the image set {dataset}")
    return content_response(request, data, sha256, "image/png")


def _idle(state: BuildState | None) -> bool:
    """No build is queued or running (none, or the last one failed)."""
    return state is None or state.status == "failed"


def _filters(text: str, layer: LayerEntry, most: int) -> list[int]:
    try:
        wanted = parse_filters(text)
    except ValueError as exc:
        raise invalid([FieldError(loc=["query", "filters"], msg=str(exc), type="value_error")]) from None
    beyond = [f for f in wanted if f >= layer.filters]
    if beyond or len(wanted) > most:
        msg = (
            f"layer {layer.name} has {layer.filters} filters (0-{layer.filters - 1}); out of range: {beyond[:10]}"
            if beyond
            else f"{len(wanted)} filters asked for; at most {most} at once"
        )
        raise invalid([FieldError(loc=["query", "filters"], msg=msg, type="filter_out_of_range")])
    return wanted


def _build(services: Services, key: str, model: str, layer: str, weights: str, record: ImageSet) -> BuildState:
    """The index's build: the one there is, or a new one queued now (the first asker sends the task)."""
    settings, now = services.settings, time.time()
    state = BuildState(
        key=key,
        status="queued",
        model=model,
        layer=layer,
        weights=weights,
        dataset=record.id,
        k=settings.examples_top_k,
        side=settings.examples_size,
        images=len(record.images),
        created_at=now,
        updated_at=now,
    )
    state, created = services.stores.example_indexes.start(state)
    if created:
        services.dispatcher.examples(key)
    return state


def _examples(index: ExampleIndex, key: str, filters: list[int]) -> LayerExamples:
    base = f"/v1/datasets/{index.dataset}"

    def picture(sha256: str) -> str:
        return f"{base}/examples/{key}/{sha256}.png"

    return LayerExamples(
        model=index.model,
        layer=index.layer,
        dataset=index.dataset,
        k=index.k,
        side=index.side,
        receptive_field=index.receptive_field,
        filters=[
            FilterExamples(
                filter=f,
                examples=[
                    ExampleEntry(
                        image=index.images[e.image],
                        image_url=f"{base}/images/{e.image}.png",
                        activation=e.activation,
                        position=e.position,
                        box=e.box,
                        crop_url=picture(e.crop),
                        thumbnail_url=picture(index.thumbnails[e.image]),
                    )
                    for e in index.filters[f]
                ],
            )
            for f in filters
        ],
    )
