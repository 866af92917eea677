"""Publishing the model and layer catalog for the API (which has no torch to compute it).

``python -m worker.catalog`` checks and publishes the models in Settings.models; a worker's
parent process runs it as a child process at start, so torch stays out of the parent. A model
whose entry does not load (core.engine.models.check_model: unknown architecture, weight file
missing, unreadable or not of its architecture) is logged and published unavailable, with the
reason: the API refuses its jobs, and no worker renders it with random weights.
"""

import logging
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from core.catalog import LayerAnswer, LayerEntry, ModelEntry
from core.errors import FilterVizError, ModelUnavailable, WeightsUnavailable
from core.processes import die_with_parent
from core.settings import Settings
from core.store import Stores
from core.store.catalog import CatalogStore

if TYPE_CHECKING:
    from core.engine import LayerInfo

log = logging.getLogger(__name__)


def model_entries(settings: Settings) -> Iterator[ModelEntry]:
    """The served models (Settings.models) as the engine describes them, layers at their default size,
    each checked; one at a time, so that each can be published as soon as it is described."""
    from core.engine import models

    models.use_models_file(settings.models_file)
    for name in settings.models:
        info = models.model_info(name)
        try:
            yield checked_entry(name, settings.weights_dir)
        except ModelUnavailable as unusable:
            log.error("model %s is unavailable: %s", name, unusable)
            facts = {"available": False, "reason": str(unusable), "weights_available": False, "layers": []}
            yield ModelEntry.model_validate({**info.to_dict(), **facts})


def checked_entry(name: str, weights_dir: Path | None) -> ModelEntry:
    """The model's entry once its architecture builds and lists its layers, and its weight file (where
    there is one yet: a built-in's may be fetched later) fits it; else ModelUnavailable saying why."""
    from core.engine import list_layers, models

    info = models.model_info(name)
    identity = _weights_identity(name, weights_dir)
    if identity is not None or not models.model_config(name).fetchable:
        models.check_model(name, weights_dir)
    size = (info.default_size, info.default_size)
    layers = _layer_entries(name, size, list_layers(name, size))
    facts = {"weights_available": identity is not None, "weights_identity": identity, "layers": layers}
    return ModelEntry.model_validate({**info.to_dict(), **facts})


# Sizes whose layer lists are published up front: a ``?size=`` question about them never has to
# wait for a worker that may be busy rendering (128 is the seed's size and the request default).
PUBLISHED_SIZES = (64, 96, 128, 160, 192, 256)


def publish_catalog(settings: Settings) -> None:
    """Every served model's entry first (the API is ready once all are in), then the common sizes."""
    catalog = Stores.from_settings(settings).catalog
    published = []
    for entry in model_entries(settings):
        catalog.publish(entry)
        if not entry.available:
            continue  # no layers at any size
        published.append(entry.name)
        log.info(
            "published %s: %d layers, weights %s",
            entry.name,
            len(entry.layers),
            "available" if entry.weights_available else "missing",
        )
    for name in published:
        for side in PUBLISHED_SIZES:
            describe_layers(catalog, name, (side, side))


def describe_layers(catalog: CatalogStore, model: str, size: tuple[int, int]) -> None:
    """Answer the API's question "which layers at this size?" in the catalog's cache."""
    from core.engine import list_layers

    try:
        answer = LayerAnswer(layers=_layer_entries(model, size, list_layers(model, size)))
    except FilterVizError as exc:
        answer = LayerAnswer(error=str(exc))
    catalog.store_layers(model, size, answer)


def start_publisher() -> subprocess.Popen:
    """Publish from a child process (same environment, so the same Settings) that dies with the worker."""
    return subprocess.Popen([sys.executable, "-m", "worker.catalog"], preexec_fn=die_with_parent())


def _weights_identity(model: str, weights_dir: Path | None) -> str | None:
    """What the API keys the model's pictures by (core.cache_key.picture_keys); None without a weight file."""
    from core.engine import weights_identity

    try:
        return weights_identity(model, weights_dir)
    except WeightsUnavailable:
        return None


def _layer_entries(model: str, size: tuple[int, int], layers: Iterable["LayerInfo"]) -> list[LayerEntry]:
    """Catalog entries of ``layers`` at ``size``, with what one image costs up to each."""
    from core.engine.layers import layer_costs

    entries = []
    for layer in layers:
        flops, activations = layer_costs(model, size, layer)
        entries.append(LayerEntry.model_validate({**layer.to_dict(), "flops": flops, "activations": activations}))
    return entries


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[catalog] %(levelname)s %(message)s")
    publish_catalog(Settings())
