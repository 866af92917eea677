"""The built-in demo image set ("demo"): the natural photographs scikit-image ships, and crops of them.

Made from the installed package (nothing downloaded): 14 photographs, each whole and cut into 2x2 and
3x3 tiles that do not overlap, 196 images, normalized as uploaded sets are (core.image_sets). Torch-free.
"""

import numpy as np
from PIL import Image

from core.image_sets import SetImage, normalized_png

DEMO_DATASET = "demo"
# scikit-image's photographs that need no download (grayscale ones are expanded to RGB)
DEMO_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "coins",
    "moon",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "grass",
    "gravel",
    "brick",
    "clock",
)
DEMO_TILINGS = (1, 2, 3)  # each photo whole, in 2x2 and in 3x3 tiles


def demo_images() -> list[SetImage]:
    """The demo set, in a fixed order: "chelsea", "chelsea 2x2 r0c1", ..."""
    from skimage import data  # only where the demo set is made

    images = []
    for photo in DEMO_PHOTOS:
        pixels = np.asarray(getattr(data, photo)())
        picture = Image.fromarray(pixels).convert("RGB")
        for tiles in DEMO_TILINGS:
            for name, tile in _tiles(photo, picture, tiles):
                png, width, height = normalized_png(tile)
                images.append(SetImage(name, png, width, height))
    return images


def _tiles(photo: str, picture: Image.Image, tiles: int) -> list[tuple[str, Image.Image]]:
    if tiles == 1:
        return [(photo, picture)]
    width, height = picture.size
    found = []
    for row in range(tiles):
        for column in range(tiles):
            box = (
                column * width // tiles,
                row * height // tiles,
                (column + 1) * width // tiles,
                (row + 1) * height // tiles,
            )
            found.append((f"{photo} {tiles}x{tiles} r{row}c{column}", picture.crop(box)))
    return found
