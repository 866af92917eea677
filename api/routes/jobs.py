"""Render jobs: submit, read, list, cancel, and download their pictures."""

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from kombu.exceptions import OperationalError

from api.deps import Services, ServicesDep
from api.problems import FieldError, Problem, invalid, not_found, problem_responses
from api.schemas import Job, JobPage, job_url
from api.validation import request_errors
from core.jobs import FilterResult, InvalidCursor, JobRecord, JobStatus
from core.spec import RenderSpec
from core.storage import GRID_PNG, filter_animation, filter_png

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

IMMUTABLE = "public, max-age=31536000, immutable"

SPEC_EXAMPLES = {
    "seed": {
        "summary": "The seed's picture: 20 filters of VGG16's block4_conv1",
        "value": {"model": "vgg16", "layer": "block4_conv1", "filters": "0-19", "steps": 20, "size": 128},
    },
    "small": {
        "summary": "Four filters of EfficientNet-Lite0, quick on a CPU",
        "value": {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": [0, 1, 2, 3], "steps": 10, "size": 64},
    },
    "cat": {
        "summary": "Start from an uploaded picture (POST /v1/images)",
        "value": {
            "model": "vgg16",
            "layer": "block5_conv3",
            "filters": "0,5,9",
            "seed": 7,
            "init": {"type": "image", "image_id": "0123456789abcdef0123456789abcdef"},
        },
    },
}

VariantQuery = Annotated[int, Query(ge=0, description="which of the request's `diversity` pictures")]


def picture_responses(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media_type: {}}, "description": "the picture"},
        304: {"description": "not modified (If-None-Match matched the ETag)"},
        **problem_responses(404, 422),
    }


@router.post("", status_code=202, response_model=Job, responses=problem_responses(422, 503))
def submit_job(
    spec: Annotated[RenderSpec, Body(openapi_examples=SPEC_EXAMPLES)], services: ServicesDep, response: Response
) -> Job:
    """Validate a render request against the limits and the workers' catalog, then queue it."""
    errors = request_errors(spec, services.settings, services.served_models(), services.stores.uploads)
    if errors:
        raise invalid(errors)
    record = services.stores.jobs.create(spec)
    try:
        services.dispatcher.render(record.id)
    except OperationalError:
        services.stores.jobs.delete(record.id)
        raise
    response.headers["Location"] = job_url(record.id)
    return Job.from_record(record)


@router.get("", response_model=JobPage, responses=problem_responses(422))
def list_jobs(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    status: JobStatus | None = None,
) -> JobPage:
    """Jobs, newest first, optionally of one status."""
    try:
        records, next_cursor = services.stores.jobs.page(limit, cursor, status)
    except InvalidCursor as exc:
        raise invalid([FieldError(loc=["query", "cursor"], msg=str(exc), type="invalid_cursor")]) from None
    return JobPage(jobs=[Job.from_record(record) for record in records], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=Job, responses=problem_responses(404))
def get_job(job_id: str, services: ServicesDep) -> Job:
    return Job.from_record(_record(services, job_id))


@router.post(
    "/{job_id}/cancel",
    response_model=Job,
    responses={202: {"model": Job, "description": "running: asked to stop"}, **problem_responses(404, 409)},
)
def cancel_job(job_id: str, services: ServicesDep, response: Response) -> Job:
    """A queued job is canceled at once (200); a running one stops within a step or two (202)."""
    outcome = services.stores.jobs.cancel(job_id)
    record = _record(services, job_id)
    if outcome == "finished":
        raise Problem(
            409, "Conflict", f"job {job_id} already {record.status}; only queued or running jobs can be canceled"
        )
    if outcome == "requested":
        response.status_code = 202
    return Job.from_record(record)


@router.get("/{job_id}/filters/{n}.png", response_class=Response, responses=picture_responses("image/png"))
def get_filter_png(job_id: str, n: int, request: Request, services: ServicesDep, variant: VariantQuery = 0) -> Response:
    """One filter's picture. Immutable once the job has succeeded."""
    _result(services, job_id, n, variant)
    return _file(services, request, job_id, filter_png(n, variant), "image/png")


@router.get("/{job_id}/filters/{n}.webp", response_class=Response, responses=picture_responses("image/webp"))
def get_filter_animation(
    job_id: str, n: int, request: Request, services: ServicesDep, variant: VariantQuery = 0
) -> Response:
    """The optimization of one filter's picture as an animated WebP (requests with ``snapshots``)."""
    if not _result(services, job_id, n, variant).animation:
        raise not_found(f"job {job_id} kept no snapshots; ask for them with snapshots > 0")
    return _file(services, request, job_id, filter_animation(n, variant), "image/webp")


@router.get("/{job_id}/grid.png", response_class=Response, responses=picture_responses("image/png"))
def get_grid_png(job_id: str, request: Request, services: ServicesDep) -> Response:
    """All of the job's filters on one contact sheet."""
    _succeeded(services, job_id)
    return _file(services, request, job_id, GRID_PNG, "image/png")


def _record(services: Services, job_id: str) -> JobRecord:
    record = services.stores.jobs.get(job_id)
    if record is None:
        raise not_found(f"no job {job_id!r}")
    return record


def _succeeded(services: Services, job_id: str) -> JobRecord:
    record = _record(services, job_id)
    if record.status != "succeeded":
        raise not_found(f"job {job_id} has no pictures (status: {record.status})")
    return record


def _result(services: Services, job_id: str, n: int, variant: int) -> FilterResult:
    record = _succeeded(services, job_id)
    for result in record.results:
        if (result.filter, result.variant) == (n, variant):
            return result
    rendered = ", ".join(sorted({str(result.filter) for result in record.results}, key=int))
    picture = f"filter {n}" + (f" variant {variant}" if variant else "")
    raise not_found(f"job {job_id} has no {picture}; it rendered {rendered}")


def _file(services: Services, request: Request, job_id: str, name: str, media_type: str) -> Response:
    data = services.stores.results.get(job_id, name)
    if data is None:
        raise not_found(f"{name} of job {job_id} is no longer stored")
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison against an If-None-Match list."""
    if if_none_match is None:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates
