"""Reading start images safely. Pillow only (no torch), so the API can validate uploads."""

import hashlib
import io
import warnings

from PIL import Image

from core.errors import InvalidImage

ACCEPTED_FORMATS = ("PNG", "JPEG")


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode a PNG or JPEG into an RGB image, refusing non-images, zero-sized and oversized ones.

    The pixel limit is checked on the header's declared size before any pixel is decoded, so a
    decompression bomb costs nothing. RGBA is composited on white; grayscale is expanded to RGB.
    """
    if not data:
        raise InvalidImage("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage(f"not a readable image: {', '.join(ACCEPTED_FORMATS)} are accepted ({exc})") from None
    width, height = image.size
    if width == 0 or height == 0:
        raise InvalidImage(f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InvalidImage(f"the image is {width}x{height} = {width * height} pixels; at most {max_pixels} are accepted")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"the image is truncated or corrupt ({exc})") from None
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def image_id_for(data: bytes) -> str:
    """A start image's id: its content hash, so the same upload is one image and ids are cache keys."""
    return hashlib.sha256(data).hexdigest()[:32]
