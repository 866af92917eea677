import pytest

from core.engine import list_layers, resolve_layer
from core.errors import UnknownLayer, UnknownModel

# The seed's table (Keras model.summary() of VGG16 without its top, 128x128 input), as (C, H, W).
SEED_VGG16_TABLE = [
    ("block1_conv1", (64, 128, 128), 1792),
    ("block1_conv2", (64, 128, 128), 36928),
    ("block1_pool", (64, 64, 64), 0),
    ("block2_conv1", (128, 64, 64), 73856),
    ("block2_conv2", (128, 64, 64), 147584),
    ("block2_pool", (128, 32, 32), 0),
    ("block3_conv1", (256, 32, 32), 295168),
    ("block3_conv2", (256, 32, 32), 590080),
    ("block3_conv3", (256, 32, 32), 590080),
    ("block3_pool", (256, 16, 16), 0),
    ("block4_conv1", (512, 16, 16), 1180160),
    ("block4_conv2", (512, 16, 16), 2359808),
    ("block4_conv3", (512, 16, 16), 2359808),
    ("block4_pool", (512, 8, 8), 0),
    ("block5_conv1", (512, 8, 8), 2359808),
    ("block5_conv2", (512, 8, 8), 2359808),
    ("block5_conv3", (512, 8, 8), 2359808),
    ("block5_pool", (512, 4, 4), 0),
]


def test_vgg16_catalog_is_the_seed_table():
    layers = list_layers("vgg16", 128)
    assert [(layer.name, layer.output_shape, layer.params) for layer in layers] == SEED_VGG16_TABLE
    assert sum(layer.params for layer in layers) == 14_714_688
    assert all(layer.filters == layer.output_shape[0] for layer in layers)


def test_vgg16_layers_answer_to_torchvision_paths_and_are_seen_after_their_relu():
    layer = resolve_layer("vgg16", "features.17", 128)
    assert layer.name == "block4_conv1"
    assert layer.module_path == "features.17" and layer.relu  # Keras' Conv2D includes its ReLU
    assert resolve_layer("vgg16", "block1_pool").module_path == "features.4"


def test_shapes_follow_the_input_size():
    assert resolve_layer("vgg16", "block4_conv1", (64, 96)).output_shape == (512, 8, 12)
    assert resolve_layer("vgg16", "block5_pool", 16).output_shape == (512, 0, 0)


@pytest.mark.parametrize(
    "model, layer, filters",
    [
        ("efficientnet_lite0", "blocks.4", 112),
        ("resnet50", "layer3", 1024),
        ("googlenet", "inception4c", 512),
        ("alexnet", "features.3", 192),
        ("vgg19", "block5_conv4", 512),
    ],
)
def test_every_model_lists_its_blocks_and_convs(model, layer, filters):
    info = resolve_layer(model, layer, 224)
    assert info.filters == filters
    assert info.output_shape[1] > 0
    assert any(item.type == "Conv2d" for item in list_layers(model))


def test_unknown_layer_lists_the_valid_ones():
    with pytest.raises(UnknownLayer) as error:
        resolve_layer("vgg16", "block6_conv1")
    assert str(error.value).startswith("model vgg16 has no layer 'block6_conv1'; valid layers: block1_conv1, ")
    assert "block5_pool" in str(error.value)


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(
        UnknownModel, match="valid models: vgg16, vgg19, alexnet, resnet50, googlenet, efficientnet_lite0"
    ):
        list_layers("vgg17")
