"""An examples index: per filter of one layer, the dataset images that excite it most, as stored. Torch-free.

One index per (model, weights identity, layer, dataset and its content, k, view side): its key hashes them
all, so a changed weight file or image set is another index, never a stale one. The index is a small JSON
document (:class:`ExampleIndex`) beside the PNGs it names by SHA-256: for each image that is anyone's
example, its view (the thumbnail), and for each example the crop of that view around the strongest
position (its receptive field). Asking for other filters of the layer reads the same index: no model pass.

An image is ranked as its *view*: scaled so that its short side is the view side, then cut to the
central square (the network sees one size, so every image is one batch row).
"""

import hashlib
import io
import json

from PIL import Image
from pydantic import BaseModel, Field

from core.image_sets import PNG_COMPRESSION

INDEX_VERSION = 1  # bump when the ranking, the views or the crops change: older indexes are not reused
THUMBNAIL_SIDE = 128


def index_key(model: str, weights: str, layer: str, dataset: str, fingerprint: str, k: int, side: int) -> str:
    facts = {"v": INDEX_VERSION, "model": model, "weights": weights, "layer": layer, "dataset": dataset}
    facts |= {"fingerprint": fingerprint, "k": k, "side": side}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:32]


def view_of(picture: Image.Image, side: int) -> Image.Image:
    """``picture`` scaled so its short side is ``side``, then its central ``side`` x ``side`` square."""
    scale = side / min(picture.size)
    width, height = max(side, round(picture.width * scale)), max(side, round(picture.height * scale))
    scaled = picture.resize((width, height), Image.Resampling.BICUBIC)
    left, top = (width - side) // 2, (height - side) // 2
    return scaled.crop((left, top, left + side, top + side))


def png_bytes(picture: Image.Image) -> bytes:
    """Fast compression (as normalized images): an index holds hundreds of crops, its build should not wait on zlib."""
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=PNG_COMPRESSION)
    return out.getvalue()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class IndexedExample(BaseModel):
    image: int = Field(description="the image's place in the set")
    activation: float = Field(description="the filter's largest activation over the image's positions")
    position: tuple[int, int] = Field(description="(y, x) of that activation in the layer's output")
    box: tuple[int, int, int, int] = Field(description="(left, top, right, bottom) of its receptive field in the view")
    crop: str = Field(description="SHA-256 of the crop's PNG")


class ExampleIndex(BaseModel):
    model: str
    weights: str
    layer: str
    dataset: str
    fingerprint: str
    k: int
    side: int
    grid: tuple[int, int] = Field(description="(h, w) of the layer's output at the view side")
    receptive_field: dict[str, dict[str, float | int | None]]
    images: list[str] = Field(description="the set's image names, by place")
    thumbnails: dict[int, str] = Field(description="image place -> SHA-256 of its view's thumbnail PNG")
    filters: list[list[IndexedExample]] = Field(description="per filter, its best images, best first")
    seconds: float = Field(description="how long the build took")
    forward_passes: int = Field(description="batches run through the network")

    def encoded(self) -> bytes:
        return self.model_dump_json().encode()


def thumbnail(view: Image.Image) -> Image.Image:
    return view.resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
