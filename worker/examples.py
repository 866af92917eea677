"""The examples task's body: build one examples index (core.engine.examples) from the state the API queued.

The state names everything; the task carries only the index key. A build is done once: a redelivered task
finds the index stored (or the state finished) and does nothing; a build that fails records why.
"""

import logging
import time

from PIL import Image

from core.errors import FilterVizError
from core.example_index import view_of
from core.images import open_image
from core.settings import Settings
from core.store import Stores
from core.store.datasets import ImageSet
from core.store.example_indexes import BuildState

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 1.0  # least seconds between two progress writes


def build_examples(key: str, stores: Stores, settings: Settings, device: str) -> None:
    state = stores.example_indexes.state(key)
    if state is None or state.status in ("succeeded", "failed"):
        return  # lapsed, or finished by an earlier delivery
    dataset = stores.datasets.get(state.dataset)
    if dataset is not None and stores.example_indexes.exists(dataset.id, key):
        stores.example_indexes.update(state, "succeeded", done=state.images)
        return
    state = stores.example_indexes.update(state, "running")
    try:
        if dataset is None:
            raise FilterVizError(f"the image set {state.dataset} is gone (deleted or expired)")
        _build(state, dataset, stores, settings, device)
    except Exception as exc:
        if not isinstance(exc, FilterVizError):  # a filterviz error says all there is to say
            log.exception("examples index %s failed", key)
        stores.example_indexes.update(state, "failed", error=f"{type(exc).__name__}: {exc}")
        return
    stores.example_indexes.update(state, "succeeded", done=state.images)


def _build(state: BuildState, dataset: ImageSet, stores: Stores, settings: Settings, device: str) -> None:
    from core.engine import load_model, resolve_layer, weights_identity  # torch: in pool processes only
    from core.engine.examples import IndexRequest, build_example_index

    weights = weights_identity(state.model, settings.weights_dir)
    if weights != state.weights:
        raise FilterVizError(f"this worker's weights of {state.model} are {weights}, not {state.weights} as asked")
    model = load_model(state.model, settings.weights_dir, device)
    layer = resolve_layer(state.model, state.layer, state.side)
    request = IndexRequest(
        model=state.model,
        weights=state.weights,
        layer=layer.name,
        module_path=layer.module_path,
        relu=layer.relu,
        dataset=dataset.id,
        fingerprint=dataset.fingerprint,
        k=state.k,
        side=state.side,
        batch_size=settings.examples_batch_size,
    )
    last_write = time.monotonic()

    def load_view(place: int) -> Image.Image:
        nonlocal last_write, state
        data = stores.datasets.image(dataset.id, place)
        if data is None:
            raise FilterVizError(f"image {place} of the set {dataset.id} is missing from storage")
        if time.monotonic() - last_write > PROGRESS_SECONDS:
            state, last_write = stores.example_indexes.update(state, "running", done=place), time.monotonic()
        return view_of(open_image(data, settings.max_image_pixels), state.side)

    index, pictures = build_example_index(model, request, dataset.images, load_view, device)
    stores.example_indexes.put(state.key, index, pictures)
    stores.datasets.keep(dataset.id)
    log.info("examples index %s: %d images in %.1f s", state.key, len(dataset.images), index.seconds)
