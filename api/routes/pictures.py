"""Stable picture URLs: a filter's picture named by everything that determines it, served from the result
cache, or rendered by one job however many clients ask for it."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import ValidationError

from api.access import CallerDep, authorize
from api.admission import admission_limits, admitted, dispatch
from api.deps import Services, ServicesDep
from api.picture_response import stored_picture_response
from api.problems import FieldError, invalid, problem_responses, unavailable
from api.validation import SubmitFacts, request_errors
from core.cache_key import picture_keys
from core.catalog import find_layer
from core.errors import DamagedPicture, WeightsUnavailable
from core.job_view import Job, job_url
from core.jobs import JobRecord
from core.settings import Settings
from core.spec import MAX_DIVERSITY, RenderSpec
from core.store.picture_cache import StoredPicture

router = APIRouter(
    prefix="/v1/pictures", tags=["pictures"], dependencies=[Depends(authorize)], responses=problem_responses(401, 429)
)

RESERVATION_WAIT_SECONDS = 5.0  # the longest a request waits for another one that is queuing the same picture
_TRIES = 3  # holders found finished (then released) before the request gives up with a 503
_LIVE = ("queued", "running")

# where a field of the spec is in this route's URL
_PATH_FIELDS = {"model": "model", "layer": "layer", "filters": "filter"}


@router.get(
    "/{model}/{layer}/{filter}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the picture, from the cache"},
        202: {"model": Job, "description": "not rendered yet: the job that renders it (Location: its URL)"},
        304: {"description": "not modified (If-None-Match matched the ETag)"},
        307: {"description": "FILTERVIZ_PICTURE_DELIVERY=redirect: the picture at a short-lived presigned URL"},
        **problem_responses(422, 500, 503),
    },
)
def get_picture(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    model: str,
    layer: Annotated[str, Path(max_length=100)],
    filter: Annotated[int, Path(ge=0)],
    method: Literal["classic", "robust", "maco"] = "classic",
    objective: Literal["channel", "neuron"] = "channel",
    steps: Annotated[int | None, Query(description="default per method, as in POST /v1/jobs")] = None,
    step_size: float | None = None,
    size: Annotated[str, Query(pattern=r"^[0-9]{1,5}(x[0-9]{1,5})?$", description="128, or HxW")] = "128",
    seed: int = 0,
    precision: Literal["fp32", "bf16"] = "fp32",
    diversity: Annotated[int, Query(ge=1, le=MAX_DIVERSITY)] = 1,
    variant: Annotated[int, Query(ge=0, description="which of the `diversity` pictures")] = 0,
    snapshots: int = 0,
    transparency: Annotated[bool, Query(description="robust, maco: an RGBA transparency map")] = False,
) -> Response:
    """A filter's picture from noise, by every setting that determines it (validated as POST /v1/jobs is).

    200 with the PNG when it was rendered before (by anyone: such pictures are shared); otherwise 202
    with the caller's job that renders it, the same job for every request until it ends.
    """
    services.require_published(model)
    fields = {"method": method, "objective": objective, "steps": steps, "step_size": step_size, "seed": seed}
    more = {"precision": precision, "diversity": diversity, "snapshots": snapshots, "size": _size(size)}
    more["transparency"] = transparency
    spec = _spec(model=model, layer=layer, filters=[filter], **fields, **more)
    key = _cache_key(services, spec, variant)
    stored = services.stores.cache.get(key)
    if stored is not None:
        return _png(services, request, stored)
    record = _rendering_job(services, spec, key, caller)
    return Response(
        Job.from_record(record).model_dump_json(),
        status_code=202,
        media_type="application/json",
        headers={"Location": job_url(record.id)},
    )


def _size(text: str) -> tuple[int, int]:
    height, _, width = text.partition("x")
    return int(height), int(width or height)


def _spec(**fields: object) -> RenderSpec:
    """The request as POST /v1/jobs would read it; its errors name their place in this URL."""
    try:
        return RenderSpec.model_validate(fields)
    except ValidationError as exc:
        errors = [FieldError(loc=["body", *e["loc"]], msg=e["msg"], type=e["type"]) for e in exc.errors()]
        raise invalid([_here(error) for error in errors]) from exc


def _here(error: FieldError) -> FieldError:
    """A body field's error, placed in this route's path or query."""
    if error.loc[:1] != ["body"]:
        return error
    rest = error.loc[1:]
    name = str(rest[0]) if rest else ""
    loc: list[str | int] = ["path", _PATH_FIELDS[name]] if name in _PATH_FIELDS else ["query", *rest]
    return error.model_copy(update={"loc": loc})


def _cache_key(services: Services, spec: RenderSpec, variant: int) -> str:
    """The picture's cache key, after the checks of POST /v1/jobs (limits, catalog, per-job costs)."""
    models = services.served_models()
    errors = request_errors(spec, None, services.settings, SubmitFacts(models, None, None))
    if variant >= spec.diversity:
        msg = f"variant {variant} of diversity {spec.diversity}: at most {spec.diversity - 1}"
        errors.append(FieldError(loc=["query", "variant"], msg=msg, type="variant_out_of_range"))
    if errors:
        raise invalid([_here(error) for error in errors])
    entry = models[spec.model]
    layer = find_layer(entry.layers, spec.layer or "")
    assert layer is not None and spec.filters is not None  # request_errors checked both
    if entry.weights_identity is None:
        raise WeightsUnavailable(f"the workers have no weights for {spec.model} ({entry.weights_file})")
    return picture_keys(spec, layer.name, entry.weights_identity)[(spec.filters[0], variant)]


def _png(services: Services, request: Request, stored: StoredPicture) -> Response:
    """The cached picture, checked against its size and hash: damaged bytes are a 500 that says so."""
    pictures = services.stores.results.pictures
    try:
        response = stored_picture_response(request, pictures, stored.png, "image/png", services.settings)
    except DamagedPicture as exc:
        raise DamagedPicture(f"the picture is damaged: {exc}; ask again to render it anew") from exc
    if response is None:
        raise DamagedPicture("the cached picture's file is gone; ask again to render it anew")
    return response


def _rendering_job(services: Services, spec: RenderSpec, key: str, caller: str | None) -> JobRecord:
    """The caller's live job for the picture, queued by whichever request got there first."""
    requests = services.picture_requests
    for _ in range(_TRIES):
        try:
            held = requests.holder(key, caller, RESERVATION_WAIT_SECONDS)
        except TimeoutError as exc:
            raise unavailable("Busy", f"{exc}; try again", "/problems/picture-busy") from exc
        if held is None:
            token = requests.reserve(key, caller)
            if token is not None:
                return _queue(services, spec, key, caller, token)
            continue  # another request reserved it just now: wait for its job
        record = services.stores.jobs.get(held)
        if record is not None and record.caller == caller and record.status in _LIVE:
            return record
        requests.release(key, caller, held)  # ended or expired: the next try queues another job
    raise unavailable("Busy", "the picture's jobs keep ending without it; try again", "/problems/picture-busy")


def _queue(services: Services, spec: RenderSpec, key: str, caller: str | None, token: str) -> JobRecord:
    """Queue the job under the reservation ``token``; the reservation goes when nothing could be queued."""
    settings: Settings = services.settings
    try:
        admission = services.stores.jobs.admit(spec, caller=caller, limits=admission_limits(settings))
        record = admitted(admission, None, settings)
        dispatch(services, record)
    except BaseException:
        services.picture_requests.release(key, caller, token)
        raise
    services.picture_requests.assign(key, caller, token, record.id)
    return record
