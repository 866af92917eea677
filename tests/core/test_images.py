import io

import pytest
from PIL import Image

from core.errors import InvalidImage
from core.images import ImageSize, image_id_for, image_size, open_image


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_the_cat_is_read_as_rgb(cat_jpeg):
    image = open_image(cat_jpeg, 10**8)
    assert image.mode == "RGB" and image.size == (451, 300)


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "P", "I;16"])
def test_other_modes_become_rgb(mode):
    assert open_image(encoded(Image.new(mode, (5, 4))), 100).mode == "RGB"


def test_transparent_pixels_become_white():
    image = open_image(encoded(Image.new("RGBA", (2, 2), (255, 0, 0, 0))), 100)
    assert image.getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "the image is empty"),
        (b"GIF89a not really", "not a readable image: PNG, JPEG are accepted"),
        (encoded(Image.new("RGB", (8, 8)), "GIF"), "not a readable image"),
    ],
)
def test_non_images_are_refused(data, message):
    with pytest.raises(InvalidImage, match=message):
        open_image(data, 100)


def test_images_over_the_pixel_limit_are_refused_before_decoding():
    with pytest.raises(InvalidImage, match="the image is 20x10 = 200 pixels; at most 199 are accepted"):
        open_image(encoded(Image.new("RGB", (20, 10))), 199)


def test_truncated_images_are_refused(cat_jpeg):
    png = encoded(Image.new("RGB", (64, 64), (10, 20, 30)))
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        open_image(png[: len(png) // 2], 10**6)


def test_image_ids_are_content_hashes(cat_jpeg):
    assert image_id_for(cat_jpeg) == image_id_for(bytes(cat_jpeg))
    assert len(image_id_for(cat_jpeg)) == 32 and image_id_for(cat_jpeg) != image_id_for(b"x")


def test_the_header_alone_tells_the_size_and_refuses_bombs(cat_jpeg):
    assert image_size(cat_jpeg[:2000], 10**6) == ImageSize(451, 300)  # the pixels are not even there
    with pytest.raises(InvalidImage, match="at most 100000 are accepted"):
        image_size(cat_jpeg, 100_000)
