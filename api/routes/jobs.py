"""Render jobs: submit, read, list, cancel, delete, and download their pictures."""

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response

from api.access import CallerDep, authorize
from api.admission import admission_limits, admitted, dispatch
from api.deps import Services, ServicesDep, submit_facts
from api.picture_response import stored_picture_response
from api.problems import Problem, invalid, not_found, problem_responses
from api.schemas import Job, JobPage, JobRequest
from api.validation import fitted_to_start_image, request_errors, with_conv_layers
from core.errors import DamagedPicture, list_valid
from core.job_view import job_url
from core.jobs import JobRecord, JobStatus
from core.pictures import Picture
from core.store.files import filter_animation, filter_png, grid_png

router = APIRouter(
    prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(authorize)], responses=problem_responses(401, 429)
)

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
LayerPath = Annotated[str, Path(description="one of the job's layers, as its request names it (see its grids)")]
PNG, WEBP = "image/png", "image/webp"
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="any unique string (e.g. a UUID): a retry with the same key and body returns the same job "
        "instead of queuing another; the same key with another body is refused (422)",
    ),
]
SUBMIT_HEADERS = {
    "Location": {"description": "the job's URL", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "`true` when an earlier request with this Idempotency-Key created the job",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def picture_responses(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media_type: {}}, "description": "the picture"},
        304: {"description": "not modified (If-None-Match matched the ETag)"},
        307: {"description": "FILTERVIZ_PICTURE_DELIVERY=redirect: the picture at a short-lived presigned URL"},
        **problem_responses(404, 422, 500),
    }


@router.post(
    "",
    status_code=202,
    response_model=Job,
    responses={202: {"headers": SUBMIT_HEADERS}, **problem_responses(400, 422, 429, 503)},
)
def submit_job(
    request: Annotated[JobRequest, Body(openapi_examples=SPEC_EXAMPLES)],
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    """Validate a render request against the limits and the workers' catalog, then queue it.

    A full queue answers 503 and a caller with too many unfinished jobs 429, both with Retry-After.
    """
    services.require_published(request.model)
    settings = services.settings
    asked = request.spec()
    facts = submit_facts(services, asked, request.webhook, caller)
    spec = fitted_to_start_image(asked, "size" in request.model_fields_set, facts.start_image, settings)
    spec = with_conv_layers(spec, facts.models)
    errors = request_errors(spec, request.webhook, settings, facts)
    if errors:
        raise invalid(errors)
    fingerprint = request_fingerprint(request)
    admission = services.stores.jobs.admit(
        spec,
        caller=caller,
        webhook=request.webhook,
        limits=admission_limits(settings),
        idempotency=(idempotency_key, fingerprint) if idempotency_key else None,
        idempotency_seconds=settings.idempotency_seconds,
    )
    record = admitted(admission, idempotency_key, settings)
    if admission.outcome == "replayed":
        response.headers["Idempotent-Replayed"] = "true"
    if admission.outcome == "created" or services.stores.jobs.undispatched(record.id):
        dispatch(services, record)  # a replay of a job whose first request crashed before sending it, too
    response.headers["Location"] = job_url(record.id)
    return Job.from_record(record)


@router.get("", response_model=JobPage, responses=problem_responses(422))
def list_jobs(
    services: ServicesDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    status: JobStatus | None = None,
) -> JobPage:
    """The caller's jobs, newest first, optionally of one status (a cursor never handed out: InvalidCursor, 422)."""
    records, next_cursor = services.stores.jobs.page(limit, cursor, status, caller)
    return JobPage(jobs=[Job.from_record(record) for record in records], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=Job, responses=problem_responses(404))
def get_job(job_id: str, services: ServicesDep, caller: CallerDep) -> Job:
    return Job.from_record(_record(services, job_id, caller))


@router.delete("/{job_id}", status_code=204, response_class=Response, responses=problem_responses(404))
def delete_job(job_id: str, services: ServicesDep, caller: CallerDep) -> Response:
    """Forget a job and delete its pictures; a running job stops within a step or two. Webhooks already
    due are still delivered."""
    _record(services, job_id, caller)
    services.stores.jobs.delete(job_id, caller)
    services.stores.results.delete(job_id)
    return Response(status_code=204)


@router.post(
    "/{job_id}/cancel",
    response_model=Job,
    responses={202: {"model": Job, "description": "running: asked to stop"}, **problem_responses(404, 409)},
)
def cancel_job(job_id: str, services: ServicesDep, caller: CallerDep, response: Response) -> Job:
    """A queued job is canceled at once (200); a running one stops within a step or two (202)."""
    _record(services, job_id, caller)
    outcome = services.stores.jobs.cancel(job_id)
    record = _record(services, job_id, caller)
    if outcome == "finished":
        raise Problem(
            409, "Conflict", f"job {job_id} already {record.status}; only queued or running jobs can be canceled"
        )
    if outcome == "requested":
        response.status_code = 202
    return Job.from_record(record)


@router.get("/{job_id}/filters/{n}.png", response_class=Response, responses=picture_responses("image/png"))
def get_filter_png(
    job_id: str, n: int, request: Request, services: ServicesDep, caller: CallerDep, variant: VariantQuery = 0
) -> Response:
    """One filter's picture (a job of one layer). Immutable once the job has succeeded."""
    return _filter_file(services, request, _succeeded(services, job_id, caller), None, n, variant, PNG)


@router.get("/{job_id}/filters/{n}.webp", response_class=Response, responses=picture_responses("image/webp"))
def get_filter_animation(
    job_id: str, n: int, request: Request, services: ServicesDep, caller: CallerDep, variant: VariantQuery = 0
) -> Response:
    """The optimization of one filter's picture as an animated WebP (requests with ``snapshots``)."""
    return _filter_file(services, request, _succeeded(services, job_id, caller), None, n, variant, WEBP)


@router.get("/{job_id}/grid.png", response_class=Response, responses=picture_responses("image/png"))
def get_grid_png(job_id: str, request: Request, services: ServicesDep, caller: CallerDep) -> Response:
    """All of the job's filters on one contact sheet (a job of one layer)."""
    record = _succeeded(services, job_id, caller)
    return _file(services, request, job_id, grid_png(_part_index(record, None)), PNG)


@router.get(
    "/{job_id}/layers/{layer}/filters/{n}.png", response_class=Response, responses=picture_responses("image/png")
)
def get_layer_filter_png(
    job_id: str,
    layer: LayerPath,
    n: int,
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    variant: VariantQuery = 0,
) -> Response:
    """One filter's picture of one of the job's layers. Immutable once the job has succeeded."""
    return _filter_file(services, request, _succeeded(services, job_id, caller), layer, n, variant, PNG)


@router.get(
    "/{job_id}/layers/{layer}/filters/{n}.webp", response_class=Response, responses=picture_responses("image/webp")
)
def get_layer_filter_animation(
    job_id: str,
    layer: LayerPath,
    n: int,
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    variant: VariantQuery = 0,
) -> Response:
    """The animated WebP of one filter's picture of one of the job's layers (requests with ``snapshots``)."""
    return _filter_file(services, request, _succeeded(services, job_id, caller), layer, n, variant, WEBP)


@router.get("/{job_id}/layers/{layer}/grid.png", response_class=Response, responses=picture_responses("image/png"))
def get_layer_grid_png(
    job_id: str, layer: LayerPath, request: Request, services: ServicesDep, caller: CallerDep
) -> Response:
    """The contact sheet of one of the job's layers (the job's ``grids`` list them)."""
    record = _succeeded(services, job_id, caller)
    return _file(services, request, job_id, grid_png(_part_index(record, layer)), PNG)


def request_fingerprint(request: JobRequest) -> str:
    """What an Idempotency-Key's replay must match: the whole request, normalized."""
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


def _record(services: Services, job_id: str, caller: str | None) -> JobRecord:
    """The caller's job; another caller's is as good as absent."""
    record = services.stores.jobs.get(job_id)
    if record is None or record.caller != caller:
        raise not_found(f"no job {job_id!r}")
    return record


def _succeeded(services: Services, job_id: str, caller: str | None) -> JobRecord:
    record = _record(services, job_id, caller)
    if record.status != "succeeded":
        raise not_found(f"job {job_id} has no pictures (status: {record.status})")
    return record


def _part_index(record: JobRecord, layer: str | None) -> int | None:
    """Which of the job's layers ``layer`` is, as its files are named (None: a job of one layer, whose
    files have no index); ``layer`` None asks for the job's only layer."""
    request = record.request
    if request.layers is None:
        if layer not in (None, request.layer):
            raise not_found(f"job {record.id} has no layer {layer!r}; it rendered {request.layer}")
        return None
    names = [part.layer for part in request.layers]
    if layer is None:
        raise not_found(
            f"job {record.id} rendered several layers ({list_valid(names)}): ask for its pictures under "
            f"{job_url(record.id)}/layers/{{layer}}/, as its results and grids link them"
        )
    if layer not in names:
        raise not_found(f"job {record.id} has no layer {layer!r}; it rendered {list_valid(names)}")
    return names.index(layer)


def _filter_file(
    services: Services, request: Request, record: JobRecord, layer: str | None, n: int, variant: int, media_type: str
) -> Response:
    """Filter ``n``'s picture (or animation) of ``layer`` (None: the job's only layer)."""
    part = _part_index(record, layer)
    result = _result(record, layer or record.request.layer, n, variant)
    if media_type == PNG:
        return _file(services, request, record.id, filter_png(n, variant, part), PNG)
    if not result.animation:
        raise not_found(f"job {record.id} kept no snapshots; ask for them with snapshots > 0")
    return _file(services, request, record.id, filter_animation(n, variant, part), WEBP)


def _result(record: JobRecord, layer: str | None, n: int, variant: int) -> Picture:
    """Filter ``n``'s picture of ``layer`` (a job record from before pictures named their layer: its only one)."""
    of_layer = [result for result in record.results if result.layer in (None, layer)]
    for result in of_layer:
        if (result.filter, result.variant) == (n, variant):
            return result
    rendered = ", ".join(sorted({str(result.filter) for result in of_layer}, key=int))
    picture = f"filter {n}" + (f" variant {variant}" if variant else "")
    where = f" of {layer}" if record.request.layers is not None else ""
    raise not_found(f"job {record.id} has no {picture}{where}; it rendered {rendered}")


def _file(services: Services, request: Request, job_id: str, name: str, media_type: str) -> Response:
    """The picture, checked against the size and hash it was stored with: damaged bytes are a 500 that
    says so, never a broken 200."""
    results = services.stores.results
    try:
        ref = results.refs(job_id).get(name)
        response = (
            None
            if ref is None
            else stored_picture_response(request, results.pictures, ref, media_type, services.settings)
        )
    except DamagedPicture as exc:
        raise DamagedPicture(
            f"{name} of job {job_id} is damaged: {exc}; submit the request again to render it anew"
        ) from exc
    if response is None:
        raise not_found(f"{name} of job {job_id} is no longer stored")
    return response
