"""The published catalog in Redis: what the API knows about models without torch."""

from core.catalog import LayerAnswer, LayerEntry, ModelEntry, find_layer
from core.settings import Settings
from core.store import Stores

CONV = LayerEntry(
    name="block1_conv1",
    aliases=["features.0"],
    module_path="features.0",
    type="Conv2d",
    output_shape=(64, 224, 224),
    params=1792,
    filters=64,
    flops=173_408_256,
    activations=3_211_264,
)
ENTRY = ModelEntry(
    name="vgg16",
    description="VGG-16",
    default_size=224,
    weights_file="vgg16-397923af.pth",
    weights_available=False,
    num_classes=1000,
    layers=[CONV],
)


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
    assert catalog.published_names() == {"vgg16"}
    assert catalog.layers("vgg16", (64, 64)) is None
