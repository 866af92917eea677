"""Image sets: uploaded once (PNG/JPEG files, or zip/tar archives of them), then named in examples requests."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.access import CallerDep, authorize
from api.decoding import decode_room
from api.deps import Services, ServicesDep
from api.picture_response import content_response
from api.problems import FieldError, Problem, invalid, not_found, problem_responses
from api.routes.images import MULTIPART, MULTIPART_OVERHEAD_BYTES, read_body, replay
from core.demo_images import DEMO_DATASET, demo_images
from core.example_index import sha256_of
from core.image_sets import ImageSetLimits, SetImage, normalized_member, set_members
from core.settings import Settings
from core.store.datasets import ImageSet

router = APIRouter(
    prefix="/v1/datasets", tags=["datasets"], dependencies=[Depends(authorize)], responses=problem_responses(401, 429)
)

DATASET_ID = r"^([0-9a-f]{32}|demo)$"
UPLOAD_BODY = {
    "required": True,
    "content": {
        MULTIPART: {
            "schema": {
                "type": "object",
                "properties": {
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    "name": {"type": "string", "description": "the set's name (default: the first file's)"},
                },
                "required": ["files"],
            }
        }
    },
}


class DatasetView(BaseModel):
    id: str = Field(description="use as ?dataset= of the examples routes", examples=["demo"])
    name: str
    images: int
    bytes: int = Field(description="of the normalized PNGs")
    builtin: bool = Field(description="the demo set: everyone's, never expires, cannot be deleted")
    url: str

    @classmethod
    def of(cls, record: ImageSet) -> "DatasetView":
        return cls(
            id=record.id,
            name=record.name,
            images=len(record.images),
            bytes=record.bytes,
            builtin=record.id == DEMO_DATASET,
            url=f"/v1/datasets/{record.id}",
        )


class DatasetDetail(DatasetView):
    image_names: list[str] = Field(description="by place: image n is served at image_url with n")
    image_url: str = Field(
        description="URL template of an image, {n} its place", examples=["/v1/datasets/demo/images/{n}.png"]
    )


class DatasetList(BaseModel):
    datasets: list[DatasetView] = Field(description="the demo set first, then the caller's own, oldest first")


DatasetId = Annotated[str, Path(pattern=DATASET_ID)]


@router.post(
    "",
    status_code=201,
    response_model=DatasetDetail,
    responses=problem_responses(400, 413, 415, 422, 503, 507),
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload_dataset(request: Request, services: ServicesDep, caller: CallerDep) -> DatasetDetail:
    """An image set: multipart fields ``files`` (PNG, JPEG, or zip/tar archives of them; several allowed)
    and an optional ``name``.

    Every image is checked as a start image is (formats, decompression bombs, one still picture) and stored
    normalized: an RGB PNG whose short side is at most 256 pixels (larger ones scaled down). Archives are checked before
    anything is read from them (member counts, declared sizes, no links, no paths outside the archive). At
    most FILTERVIZ_MAX_DATASET_IMAGES images and FILTERVIZ_MAX_DATASET_BYTES bytes (uncompressed). The first
    bad file is a 422 naming it, and nothing is stored. Only the uploading API key sees the set; it is kept
    FILTERVIZ_UPLOAD_RETENTION_SECONDS after its upload or last use."""
    settings = services.settings
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != MULTIPART:
        raise Problem(415, "Unsupported Media Type", f"send {MULTIPART} with one or more fields 'files'")
    body = await read_body(request, settings.max_dataset_bytes + MULTIPART_OVERHEAD_BYTES, "the image set")
    form = await Request(request.scope, replay(body)).form(max_files=settings.max_dataset_images + 1)
    uploads = [item for item in form.getlist("files") if isinstance(item, UploadFile)]
    if not uploads:
        msg = "an image set needs one or more file fields named 'files' (PNG, JPEG, zip or tar)"
        raise invalid([FieldError(loc=["body", "files"], msg=msg, type="missing")])
    files = [(upload.filename or f"file {n}", await upload.read()) for n, upload in enumerate(uploads)]
    limits = _limits(settings)
    images: list[SetImage] = []
    for name, data in await run_in_threadpool(set_members, files, limits):
        async with decode_room(request, data, settings):  # one image decoded at a time, within the budget
            images.append(await run_in_threadpool(normalized_member, name, data, limits))
    named = form.get("name")
    set_name = named.strip()[:200] if isinstance(named, str) and named.strip() else files[0][0]
    record = await run_in_threadpool(services.stores.datasets.create, set_name, images, caller)
    return _detail(record)


@router.get("", response_model=DatasetList)
def list_datasets(services: ServicesDep, caller: CallerDep) -> DatasetList:
    """The demo set and the caller's own sets."""
    demo = demo_set(services)
    return DatasetList(datasets=[DatasetView.of(record) for record in [demo, *services.stores.datasets.owned(caller)]])


@router.get("/{dataset}", response_model=DatasetDetail, responses=problem_responses(404))
def get_dataset(services: ServicesDep, caller: CallerDep, dataset: DatasetId) -> DatasetDetail:
    return _detail(visible_dataset(services, dataset, caller))


@router.delete("/{dataset}", status_code=204, responses=problem_responses(403, 404))
def delete_dataset(services: ServicesDep, caller: CallerDep, dataset: DatasetId) -> Response:
    """Delete the set, its images and every examples index made from it."""
    record = visible_dataset(services, dataset, caller)
    if record.id == DEMO_DATASET:
        raise Problem(403, "Forbidden", "the demo set is built in: it cannot be deleted")
    services.stores.datasets.delete(record)
    return Response(status_code=204)


@router.get(
    "/{dataset}/images/{place}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the normalized image"}, **problem_responses(404)},
)
def get_dataset_image(
    request: Request, services: ServicesDep, caller: CallerDep, dataset: DatasetId, place: Annotated[int, Path(ge=0)]
) -> Response:
    record = visible_dataset(services, dataset, caller)
    data = services.stores.datasets.image(record.id, place) if place < len(record.images) else None
    if data is None:
        raise not_found(f"the image set {dataset} has no image {place} (it has {len(record.images)})")
    return content_response(request, data, sha256_of(data), "image/png")


def demo_set(services: Services) -> ImageSet:
    """The built-in demo set, made the first time anyone asks."""
    return services.stores.datasets.demo(demo_images)


def visible_dataset(services: Services, dataset: str, caller: str | None) -> ImageSet:
    """The set, if the caller may see it; 404 otherwise (another key's set is not told apart from none)."""
    if dataset == DEMO_DATASET:
        return demo_set(services)
    record = services.stores.datasets.visible(dataset, caller)
    if record is None:
        raise not_found(f"no image set {dataset}: never uploaded, expired, deleted, or another API key's")
    return record


def _limits(settings: Settings) -> ImageSetLimits:
    return ImageSetLimits(
        max_images=settings.max_dataset_images,
        max_bytes=settings.max_dataset_bytes,
        max_image_bytes=settings.max_upload_bytes,
        max_image_pixels=settings.max_image_pixels,
        min_side=settings.min_size,
    )


def _detail(record: ImageSet) -> DatasetDetail:
    return DatasetDetail(
        **DatasetView.of(record).model_dump(),
        image_names=record.images,
        image_url=f"/v1/datasets/{record.id}/images/{{n}}.png",
    )
