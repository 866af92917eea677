"""Reading start images safely. Pillow only (no torch), so the API can validate uploads."""

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image

from core.errors import InvalidImage

ACCEPTED_FORMATS = ("PNG", "JPEG")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)  # what Pillow raises on bad bytes
_SIXTEEN_BIT_GRAY = ("I;16", "I;16B", "I;16L", "I")  # Pillow's modes for 16-bit grayscale PNGs


@dataclass(frozen=True)
class ImageSize:
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def image_size(data: bytes, max_pixels: int) -> ImageSize:
    """The size the header declares, refused beyond ``max_pixels``: what decoding it will cost, for free."""
    width, height = _opened(data, max_pixels).size
    return ImageSize(width, height)


def check_image(data: bytes, max_pixels: int) -> ImageSize:
    """Decode the whole picture, so that a truncated or corrupt one is refused now, and keep only its size."""
    width, height = _decoded(data, max_pixels).size
    return ImageSize(width, height)


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode a PNG or JPEG into an RGB image, refusing non-images, zero-sized, oversized and animated ones.

    The pixel limit is checked on the header's declared size before any pixel is decoded, so a
    decompression bomb costs nothing. A start image is one still picture, so animated PNGs and
    multi-picture JPEGs (MPO) are refused rather than silently cut to their first frame. RGBA is
    composited on white; grayscale is expanded to RGB; CMYK is converted to RGB; 16-bit samples
    are scaled to 8 bits (not clipped). An RGB picture is returned as decoded, without a copy.
    """
    return _to_rgb(_decoded(data, max_pixels))


def _opened(data: bytes, max_pixels: int) -> Image.Image:
    """The picture with only its header read, refused if it is no PNG/JPEG, has no pixels or too many."""
    if not data:
        raise InvalidImage("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, *_DECODE_ERRORS) as exc:
        raise InvalidImage(f"not a readable image: {', '.join(ACCEPTED_FORMATS)} are accepted ({exc})") from None
    width, height = image.size
    if width == 0 or height == 0:
        raise InvalidImage(f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InvalidImage(
            f"the image is {width}x{height} = {width * height} pixels; at most {max_pixels} are accepted"
        )
    return image


def _decoded(data: bytes, max_pixels: int) -> Image.Image:
    image = _opened(data, max_pixels)
    try:
        frames = getattr(image, "n_frames", 1)
        if frames == 1:
            image.load()
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"the image is truncated or corrupt ({exc})") from None
    if frames > 1:
        raise InvalidImage(f"the image has {frames} frames; send one still picture, not an animation or several")
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT_GRAY:  # Pillow's own conversion would clip everything above 255 to white
        return image.convert("I").point(lambda value: value / 257).convert("L").convert("RGB")
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def image_id_for(data: bytes) -> str:
    """A start image's id: its content hash, so the same upload is one image and ids are cache keys."""
    return hashlib.sha256(data).hexdigest()[:32]
