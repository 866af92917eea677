"""Hostile uploads: a clear 4xx and nothing stored. CMYK and 16-bit pictures are converted, deliberately."""

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from core.images import open_image
from core.settings import Settings
from core.store import Stores
from core.store.connection import connect
from tests.api_fixtures import AppClient


def encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def noise(size: tuple[int, int] = (64, 48)) -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb's first bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG with its frame header (SOF0) rewritten to claim ``width`` x ``height``."""
    data = bytearray(encode(noise((16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def corrupt_png() -> bytes:
    data = bytearray(encode(noise(), "PNG"))
    start = data.index(b"IDAT") + 40
    data[start : start + 64] = bytes(64)
    return bytes(data)


def animated(format: str) -> bytes:
    frames = [Image.new("RGB", (16, 16), (80 * i, 0, 0)) for i in range(3)]
    return encode(frames[0], format, save_all=True, append_images=frames[1:])


def chunks(total: int) -> Iterator[bytes]:
    """A body sent chunked, so without a Content-Length that could be refused up front."""
    for _ in range(total // 10_000 + 1):
        yield b"\0" * 10_000


PNG, JPEG = encode(noise(), "PNG"), encode(noise(), "JPEG")
REFUSALS = [
    (
        "truncated PNG",
        dict(content=PNG[: len(PNG) // 2], headers={"content-type": "image/png"}),
        422,
        "the image is truncated or corrupt",
    ),
    (
        "truncated JPEG",
        dict(content=JPEG[: len(JPEG) // 2], headers={"content-type": "image/jpeg"}),
        422,
        "the image is truncated or corrupt",
    ),
    (
        "corrupt PNG",
        dict(content=corrupt_png(), headers={"content-type": "image/png"}),
        422,
        "the image is truncated or corrupt",
    ),
    ("JPEG header only", dict(content=JPEG[:200], headers={"content-type": "image/jpeg"}), 422, "not a readable image"),
    (
        "GIF as PNG",
        dict(content=encode(noise(), "GIF"), headers={"content-type": "image/png"}),
        422,
        "not a readable image: PNG, JPEG are accepted",
    ),
    (
        "WebP",
        dict(content=encode(noise(), "WEBP"), headers={"content-type": "image/webp"}),
        415,
        "send multipart/form-data with a field 'file'",
    ),
    ("PNG as text", dict(content=PNG, headers={"content-type": "text/plain"}), 415, "send multipart/form-data"),
    ("no content type", dict(content=PNG), 415, "send multipart/form-data"),
    (
        "PNG bomb",
        dict(content=png_declaring(100_000, 100_000), headers={"content-type": "image/png"}),
        422,
        "not a readable image",
    ),  # beyond Pillow's own bomb limit: refused before the header is trusted
    (
        "PNG too many pixels",
        dict(content=png_declaring(5000, 5000), headers={"content-type": "image/png"}),
        422,
        "the image is 5000x5000 = 25000000 pixels; at most 1000000 are accepted",
    ),
    (
        "JPEG too many pixels",
        dict(content=jpeg_declaring(60_000, 60_000), headers={"content-type": "image/jpeg"}),
        422,
        "not a readable image",
    ),
    (
        "JPEG just too many pixels",
        dict(content=jpeg_declaring(2000, 1000), headers={"content-type": "image/jpeg"}),
        422,
        "the image is 2000x1000 = 2000000 pixels; at most 1000000 are accepted",
    ),
    (
        "declared too large",
        dict(content=b"\0" * 100_001, headers={"content-type": "image/png"}),
        413,
        "the image is larger than 100000 bytes",
    ),
    (
        "chunked too large",
        dict(content=chunks(200_000), headers={"content-type": "image/png"}),
        413,
        "the image is larger than 100000 bytes",
    ),
    (
        "multipart too large",
        dict(files={"file": ("a.png", b"\0" * 100_001, "image/png")}),
        413,
        "the image is larger than 100000 bytes",
    ),
    (
        "animated PNG",
        dict(content=animated("PNG"), headers={"content-type": "image/png"}),
        422,
        "the image has 3 frames; send one still picture, not an animation",
    ),
    (
        "multi-picture JPEG",
        dict(content=animated("MPO"), headers={"content-type": "image/jpeg"}),
        422,
        "the image has 3 frames; send one still picture, not an animation",
    ),
]


@pytest.mark.parametrize(("what", "request_args", "status", "detail"), REFUSALS, ids=[case[0] for case in REFUSALS])
def test_a_bad_upload_is_a_clear_4xx_and_nothing_is_stored(
    app_client: AppClient, scratch: tuple[Settings, Stores], what: str, request_args: dict, status: int, detail: str
) -> None:
    settings = scratch[0]
    response = app_client().post("/v1/images", **request_args)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]
    assert not settings.upload_dir.exists() or list(settings.upload_dir.rglob("*")) == []
    assert list(connect(settings.redis_url).scan_iter("filterviz:upload:*")) == []


def test_cmyk_and_16_bit_pictures_are_converted_to_8_bit_rgb(app_client: AppClient) -> None:
    cmyk = encode(Image.new("CMYK", (20, 10), (0, 255, 255, 0)), "JPEG", quality=100)  # pure red, in ink
    gray16 = np.full((10, 20), 32896, dtype=np.uint16)  # 50% gray: 0x8080
    gray16[0, 0] = 65535
    gray16_png = encode(Image.fromarray(gray16), "PNG")

    client = app_client()
    for data, media_type in [(cmyk, "image/jpeg"), (gray16_png, "image/png")]:
        response = client.post("/v1/images", content=data, headers={"content-type": media_type})
        assert response.status_code == 201 and (response.json()["width"], response.json()["height"]) == (20, 10)

    red = open_image(cmyk, 1_000_000)
    assert red.mode == "RGB" and all(abs(a - b) <= 3 for a, b in zip(red.getpixel((5, 5)), (255, 0, 0), strict=True))
    gray = open_image(gray16_png, 1_000_000)
    assert gray.mode == "RGB" and gray.getpixel((5, 5)) == (128, 128, 128) and gray.getpixel((0, 0)) == (255,) * 3
