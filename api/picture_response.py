"""A stored picture as an HTTP response: immutable, its ETag the content hash, 304 when the client has it."""

from fastapi import Request, Response

IMMUTABLE = "public, max-age=31536000, immutable"


def picture_response(request: Request, data: bytes, sha256: str, media_type: str) -> Response:
    etag = f'"{sha256[:32]}"'
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
