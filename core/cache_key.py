"""What determines a picture, as the key of the result cache (core.store.picture_cache). Torch-free.

A picture is determined by the engine's algorithm, the model and its weights, the layer, the
filter and variant, and every setting of the request that changes pixels. The key is computed
from facts the caller already has (the layer's catalog name, the weight file's identity): no
model is loaded, no network is built.
"""

import hashlib
import json
import os

from core.spec import ImageInit, RenderSpec

# Bump whenever a change to the engine changes the pictures it draws: old cache entries then miss.
ALGORITHM_VERSION = 2

PictureKeys = dict[tuple[int, int], str]  # (filter, variant) -> cache key

# The request's settings that change a picture's pixels (filters, layer and model are keyed apart).
_PIXEL_SETTINGS = {
    "method",
    "objective",
    "diversity",
    "steps",
    "step_size",
    "size",
    "seed",
    "init",
    "snapshots",
    "precision",
}


def weights_identity(path: os.PathLike[str] | str) -> str:
    """A weight file's name, size and modification time: changes whenever the weights do.

    Raises FileNotFoundError where there is no such file.
    """
    stat = os.stat(path)
    return f"{os.path.basename(path)}:{stat.st_size}:{stat.st_mtime_ns}"


def picture_keys(spec: RenderSpec, layer: str, weights: str, caller: str | None = None) -> PictureKeys:
    """The cache key of each picture of ``spec``.

    ``layer`` is the catalog name of the layer the spec names (an alias gives the same keys),
    ``weights`` the model's ``weights_identity``. The device is not part of a key: devices draw
    the same picture to within rounding. A picture made from an uploaded photo is ``caller``'s
    alone: sharing it would tell another caller who had that photo what was asked of it.
    """
    common = {
        "algorithm": ALGORITHM_VERSION,
        "model": spec.model,
        "weights": weights,
        "layer": layer,
        **spec.model_dump(mode="json", include=_PIXEL_SETTINGS),
        **({"caller": caller} if isinstance(spec.init, ImageInit) else {}),
        # keyed only when asked, so that the keys of pictures without a transparency map stay as they were
        **({"transparency": True} if spec.transparency else {}),
    }
    filters = spec.filters or []
    return {(f, v): _digest({**common, "filter": f, "variant": v}) for f in filters for v in range(spec.diversity)}


def _digest(facts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:32]
