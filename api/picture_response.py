"""A stored picture as an HTTP response: immutable, its ETag the content hash, 304 when the client has it.

Streamed by the API (its bytes checked against size and hash), or, with FILTERVIZ_PICTURE_DELIVERY=redirect,
a 307 to a short-lived presigned URL of the bucket (its size checked), so the bytes bypass the API. The
bucket's response carries the immutable caching; the 307 itself must not be cached beyond its URL's life,
so it carries the ETag but ``no-store`` (a browser that kept it would follow an expired URL).
"""

from fastapi import Request, Response

from core.settings import Settings
from core.store.files import PictureRef, PictureStore

IMMUTABLE = "public, max-age=31536000, immutable"
REDIRECT_CACHING = "no-store"


def stored_picture_response(
    request: Request, pictures: PictureStore, ref: PictureRef, media_type: str, settings: Settings
) -> Response | None:
    """The picture ``ref`` as the deployment delivers it; None if it is not stored, DamagedPicture if damaged."""
    if settings.picture_delivery == "redirect":
        url = pictures.presigned_url(ref, settings.presign_seconds, media_type, IMMUTABLE)
        return None if url is None else _redirect(request, url, ref.sha256)
    data = pictures.read(ref)
    return None if data is None else _stream(request, data, ref.sha256, media_type)


def _stream(request: Request, data: bytes, sha256: str, media_type: str) -> Response:
    etag = _etag(sha256)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


def _redirect(request: Request, url: str, sha256: str) -> Response:
    etag = _etag(sha256)
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": IMMUTABLE})
    return Response(status_code=307, headers={"Location": url, "ETag": etag, "Cache-Control": REDIRECT_CACHING})


def _etag(sha256: str) -> str:
    return f'"{sha256[:32]}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison against an If-None-Match list."""
    if if_none_match is None:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


def content_response(request: Request, data: bytes, sha256: str, media_type: str) -> Response:
    """Bytes already read and checked against ``sha256`` (image sets, examples' crops), streamed as a picture is."""
    return _stream(request, data, sha256, media_type)
