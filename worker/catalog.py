"""Publishing the model and layer catalog for the API (which has no torch to compute it).

``python -m worker.catalog`` publishes the catalog of the models in Settings.models; a worker's
parent process runs it as a child process at start, so torch stays out of the parent.
"""

import logging
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from core.catalog import LayerAnswer, LayerEntry, ModelEntry
from core.errors import FilterVizError, WeightsUnavailable
from core.processes import die_with_parent
from core.settings import Settings
from core.store import Stores
from core.store.catalog import CatalogStore

if TYPE_CHECKING:
    from core.engine import LayerInfo

log = logging.getLogger(__name__)


def model_entries(settings: Settings) -> Iterator[ModelEntry]:
    """The served models (Settings.models) as the engine describes them, layers at their default size;
    one at a time, so that each can be published as soon as it is described."""
    from core.engine import list_layers, list_models

    known = {info.name: info for info in list_models()}
    for name in settings.models:
        if name not in known:
            log.warning("model %r in FILTERVIZ_MODELS is not one the engine knows; skipped", name)
            continue
        info = known[name]
        size = (info.default_size, info.default_size)
        layers = _layer_entries(name, size, list_layers(name, size))
        identity = _weights_identity(name, settings.weights_dir)
        facts = {"weights_available": identity is not None, "weights_identity": identity, "layers": layers}
        yield ModelEntry.model_validate({**info.to_dict(), **facts})


# Sizes whose layer lists are published up front: a ``?size=`` question about them never has to
# wait for a worker that may be busy rendering (128 is the seed's size and the request default).
PUBLISHED_SIZES = (64, 96, 128, 160, 192, 256)


def publish_catalog(settings: Settings) -> None:
    """Every served model's entry first (the API is ready once all are in), then the common sizes."""
    catalog = Stores.from_settings(settings).catalog
    published = []
    for entry in model_entries(settings):
        catalog.publish(entry)
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
