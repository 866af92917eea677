"""Start images: uploaded once, then named by id in POST /v1/jobs (init.type = image)."""

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Message, Receive

from api.access import CallerDep, authorize
from api.decoding import decode_room
from api.deps import Services, ServicesDep
from api.problems import FieldError, Problem, invalid, problem_responses
from api.schemas import UploadedImage
from core.images import ACCEPTED_FORMATS, check_image, image_id_for
from core.store.files import UPLOAD_SOURCE

router = APIRouter(
    prefix="/v1/images", tags=["images"], dependencies=[Depends(authorize)], responses=problem_responses(401, 429)
)

RAW_TYPES = ("image/png", "image/jpeg")
MULTIPART = "multipart/form-data"
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries and part headers around the file

UPLOAD_BODY = {
    "required": True,
    "content": {
        MULTIPART: {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        **{media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in RAW_TYPES},
    },
}


@router.post(
    "",
    status_code=201,
    response_model=UploadedImage,
    responses=problem_responses(400, 413, 415, 422, 503, 507),
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload_image(request: Request, services: ServicesDep, caller: CallerDep) -> UploadedImage:
    """Upload a PNG or JPEG: multipart field ``file``, or the raw image as the body.

    One still picture: animated or multi-frame files are refused. CMYK and 16-bit images are
    converted to 8-bit RGB. Only the uploading API key can start a job from it; it is kept
    FILTERVIZ_UPLOAD_RETENTION_SECONDS after its last upload or use."""
    limit = services.settings.max_upload_bytes
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == MULTIPART:
        data = await _multipart_file(request, limit)
    elif media_type in RAW_TYPES:
        data = await read_body(request, limit)
    else:
        detail = f"send {MULTIPART} with a field 'file', or the image itself as {' or '.join(RAW_TYPES)}"
        raise Problem(415, "Unsupported Media Type", detail)
    async with decode_room(request, data, services.settings):
        return await run_in_threadpool(_store, data, services, caller)


def _store(data: bytes, services: Services, caller: str | None) -> UploadedImage:
    """Check and keep the image; one that is not a still PNG or JPEG is InvalidImage (422), a refused write
    StorageError (507)."""
    image = check_image(data, services.settings.max_image_pixels)
    image_id = image_id_for(data)
    services.stores.upload_records.add(image_id, caller)  # first: a stored file without a record is garbage
    services.stores.upload_records.record_size(image_id, image.width, image.height)
    services.stores.uploads.put(image_id, UPLOAD_SOURCE, data)
    return UploadedImage(id=image_id, width=image.width, height=image.height)


async def read_body(request: Request, limit: int, what: str = "the image") -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes (``what``: said in the 413)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, what)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit, what)
    return bytes(body)


async def _multipart_file(request: Request, limit: int) -> bytes:
    body = await read_body(request, limit + MULTIPART_OVERHEAD_BYTES)
    form = await Request(request.scope, replay(body)).form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        msg = f"a multipart upload needs a file field named 'file' ({', '.join(ACCEPTED_FORMATS)})"
        raise invalid([FieldError(loc=["body", "file"], msg=msg, type="missing")])
    data = await upload.read()
    if len(data) > limit:
        raise _too_large(limit)
    return data


def replay(body: bytes) -> Receive:
    """An ASGI receive that hands over an already-read body, so Starlette can parse it as a form."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _too_large(limit: int, what: str = "the image") -> Problem:
    return Problem(413, "Content Too Large", f"{what} is larger than {limit} bytes, the upload limit")
