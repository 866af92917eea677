"""The published catalog in Redis: what the API knows about models without torch."""

import time

from core.catalog import LayerAnswer, LayerEntry, ModelEntry, find_layer
from core.settings import Settings
from core.stores import Stores

CONV = LayerEntry(
    name="block1_conv1", aliases=["features.0"], module_path="features.0", type="Conv2d",
    output_shape=(64, 224, 224), params=1792, filters=64,
)  # fmt: skip
ENTRY = ModelEntry(
    name="vgg16", description="VGG-16", default_size=224, weights_file="vgg16-397923af.pth",
    weights_available=False, num_classes=1000, layers=[CONV],
)  # fmt: skip


def test_layers_are_found_by_name_or_alias() -> None:
    assert find_layer([CONV], "block1_conv1") == CONV
    assert find_layer([CONV], "features.0") == CONV
    assert find_layer([CONV], "features.1") is None


def test_a_published_model_reads_back_and_drops_layers_cached_for_other_sizes(scratch: tuple[Settings, Stores]) -> None:
    catalog = scratch[1].catalog
    catalog.store_layers("vgg16", (64, 64), LayerAnswer(layers=[CONV]))
    assert catalog.layers("vgg16", (64, 64)) == LayerAnswer(layers=[CONV])

    catalog.publish(ENTRY)

    assert catalog.models() == {"vgg16": ENTRY}
    assert catalog.layers("vgg16", (64, 64)) is None


def test_waiting_for_an_answer_gives_up_after_the_timeout(scratch: tuple[Settings, Stores]) -> None:
    catalog = scratch[1].catalog
    started = time.monotonic()

    assert catalog.wait_for_layers("vgg16", (80, 80), timeout=0.3) is None
    assert 0.3 <= time.monotonic() - started < 1.0
