"""Live previews: a rendering job's pictures as they form, as small thumbnails on its event stream.

Only for jobs whose request asked (``previews``), at most once per FILTERVIZ_PREVIEW_SECONDS per
job. A preview is JSON: the job's ``step`` and ``steps``, and one entry per picture of its rows in
the chunk being optimized, ``{layer, filter, variant, step, image}`` with ``image`` a
``data:image/webp;base64,...`` URL an ``<img>`` shows as it is. It is never needed for
correctness: one that cannot be written is dropped.
"""

import base64
import io
import json
import logging
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image
from redis import RedisError

from core.store.job_events import JobPreviews

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 64  # px, the long side: a gallery tile's size on a phone, and about 1.5 KB a picture
MIME = "image/webp"
WEBP_QUALITY = 75  # lossy: an activation-maximization picture's texture costs a PNG several times as much
# The most one preview's JSON may hold: 64 pictures (FILTERVIZ_BATCH_MAX_ROWS' default) fit with room to
# spare, and each watcher receives it about once a second. The pictures beyond it are left out (counted in
# ``omitted``), the same ones each time: the first pictures show progress; every picture shows up at the end.
MAX_PREVIEW_BYTES = 256 * 1024


@dataclass(frozen=True)
class PreviewPicture:
    """One picture of a job, as it is now."""

    layer: str | None  # the request's (a validated request always names one)
    filter: int
    variant: int
    step: int  # steps done of the rendering it is in
    pixels: ArrayLike  # (H, W, 3) uint8


def thumbnail(pixels: ArrayLike) -> bytes:
    """A WebP of the picture scaled down to THUMBNAIL_SIDE on its long side (never up)."""
    image = Image.fromarray(np.asarray(pixels, dtype=np.uint8), "RGB")
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=0)  # method 0: the fastest encoder
    return buffer.getvalue()


def encode_preview(step: int, steps: int, pictures: list[PreviewPicture], max_bytes: int = MAX_PREVIEW_BYTES) -> str:
    """The preview's JSON text: the pictures in order while the text stays within ``max_bytes``."""
    entries: list[dict[str, object]] = []
    size = len(_text(step, steps, entries, len(pictures)))  # the envelope, with the largest count it may say
    for picture in pictures:
        data = base64.b64encode(thumbnail(picture.pixels)).decode("ascii")
        entry: dict[str, object] = {
            "layer": picture.layer,
            "filter": picture.filter,
            "variant": picture.variant,
            "step": picture.step,
            "image": f"data:{MIME};base64,{data}",
        }
        cost = len(json.dumps(entry, separators=(",", ":"))) + 1  # and its comma
        if size + cost > max_bytes:
            break
        entries.append(entry)
        size += cost
    return _text(step, steps, entries, len(pictures) - len(entries))


def _text(step: int, steps: int, entries: list[dict[str, object]], omitted: int) -> str:
    preview = {"step": step, "steps": steps, "pictures": entries, "omitted": omitted}
    return json.dumps(preview, separators=(",", ":"))


class PreviewPublisher:
    """Publishes each job's previews, at most once per ``interval`` seconds a job."""

    def __init__(self, previews: JobPreviews, interval: float) -> None:
        self._previews, self._interval = previews, interval
        self._last: dict[str, float] = {}  # job -> when its last preview was made

    def due(self, job_id: str) -> bool:
        return time.monotonic() - self._last.get(job_id, float("-inf")) >= self._interval

    def publish(self, job_id: str, token: str, step: int, steps: int, pictures: list[PreviewPicture]) -> None:
        self._last[job_id] = time.monotonic()
        if not pictures:
            return
        try:
            self._previews.publish(job_id, token, encode_preview(step, steps, pictures))
        except RedisError as exc:
            log.warning("could not publish a preview of job %s: %s", job_id, exc)
