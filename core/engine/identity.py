"""What determines a picture, as the key of the result cache (core.store.picture_cache)."""

import hashlib
import json

from core.engine.models import load_model, weights_identity
from core.engine.render import check_spec, pick_device
from core.spec import ImageInit, RenderSpec

# Bump whenever a change to the engine changes the pictures it draws: old cache entries then miss.
ALGORITHM_VERSION = 2

PictureKeys = dict[tuple[int, int], str]  # (filter, variant) -> cache key


def picture_keys(spec: RenderSpec, weights_dir=None, device: str = "auto", caller: str | None = None) -> PictureKeys:
    """The cache key of each picture of ``spec``, once the spec is known to fit its model.

    Raises what rendering would (UnknownLayer, FilterOutOfRange, WeightsUnavailable, ...). The
    device is not part of a key: devices draw the same picture to within rounding. A picture made
    from an uploaded photo is ``caller``'s alone: sharing it would tell another caller who had
    that photo what was asked of it.
    """
    layer = check_spec(spec)
    load_model(spec.model, weights_dir, str(pick_device(device)))  # the weights are there (cached per process)
    common = {
        "algorithm": ALGORITHM_VERSION,
        "model": spec.model,
        "weights": weights_identity(spec.model, weights_dir),
        "layer": layer.name,
        **spec.model_dump(mode="json", include={"method", "objective", "diversity", "steps", "step_size", "size",
                                                "seed", "init", "snapshots", "precision"}),
        **({"caller": caller} if isinstance(spec.init, ImageInit) else {}),
    }  # fmt: skip
    return {(f, v): _digest({**common, "filter": f, "variant": v}) for f in spec.filters for v in range(spec.diversity)}


def _digest(facts: dict) -> str:
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:32]
