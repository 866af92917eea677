"""The gallery: a browser client at ``/``, plain HTML and ES modules, served from the package (no build step).

Every page of the gallery is the same document; app.js reads the path and draws the page, so a
filter's URL (``/models/{model}/layers/{layer}/filters/{n}``) can be shared and opened directly.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.problems import not_found

GALLERY_DIR = Path(__file__).resolve().parent.parent / "gallery"
# the only files served from GALLERY_DIR, with their media types: no path from a request reaches the disk
ASSETS = {
    "app.js": "text/javascript",
    "style.css": "text/css",
}
PAGE_HEADERS = {"Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


# the gallery's pages: each is index.html, and app.js draws the page from the path
PAGES = [
    "/",
    "/jobs",
    "/jobs/{job_id}",
    "/models/{model}",
    "/models/{model}/layers/{layer}",
    "/models/{model}/layers/{layer}/filters/{number}",
]


def gallery_page() -> FileResponse:
    """The gallery's one document."""
    return FileResponse(GALLERY_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


for page in PAGES:
    router.add_api_route(page, gallery_page, methods=["GET"])


def gallery_asset(name: str) -> FileResponse:
    """The gallery's script and style sheet."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise not_found(f"no gallery asset {name!r}")
    return FileResponse(GALLERY_DIR / name, media_type=media_type, headers=PAGE_HEADERS)


router.add_api_route("/static/{name}", gallery_asset, methods=["GET"])
