"""Uploading start images: accepted forms, and every refusal with its reason."""

import io

import httpx
from PIL import Image

from core.images import image_id_for
from core.settings import Settings
from core.store import Stores
from core.store.files import UPLOAD_SOURCE


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_raw_png_is_stored_under_its_content_id(client: httpx.Client, stores: Stores) -> None:
    data = png_bytes(40, 30)
    response = client.post("/v1/images", content=data, headers={"content-type": "image/png"})

    assert response.status_code == 201
    assert response.json() == {"id": image_id_for(data), "width": 40, "height": 30}
    assert stores.uploads.get(image_id_for(data), UPLOAD_SOURCE) == data


def test_refusals_name_the_problem(client: httpx.Client, service_settings: Settings) -> None:
    limit = service_settings.max_upload_bytes
    cases = [
        (
            dict(content=b"GIF89a", headers={"content-type": "image/gif"}),
            415,
            "send multipart/form-data with a field 'file'",
        ),
        (
            dict(content=b"x" * (limit + 1), headers={"content-type": "image/png"}),
            413,
            f"the image is larger than {limit} bytes",
        ),
        (
            dict(files={"file": ("big.png", b"x" * (limit + 1), "image/png")}),
            413,
            f"the image is larger than {limit} bytes",
        ),
        (
            dict(content=b"not a picture", headers={"content-type": "image/png"}),
            422,
            "file: not a readable image: PNG, JPEG are accepted",
        ),
        (dict(files={"file": ("e.png", b"", "image/png")}), 422, "file: the image is empty (0 bytes)"),
        (
            dict(content=png_bytes(2000, 600), headers={"content-type": "image/png"}),
            422,
            "file: the image is 2000x600 = 1200000 pixels; at most 1000000 are accepted",
        ),
        (
            dict(files={"picture": ("a.png", png_bytes(2, 2), "image/png")}),
            422,
            "file: a multipart upload needs a file field named 'file'",
        ),
    ]
    for request, status, detail in cases:
        response = client.post("/v1/images", **request)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert detail in response.json()["detail"]
