"""Feature extraction: stopping at a layer, and computing only each row's own channel of a conv."""

import pytest
import torch

from core.engine import features, load_model, resolve_layer
from core.engine.batch_plan import Row
from core.engine.features import ChannelExtractor, FeatureExtractor
from core.engine.objectives import ChunkObjective
from core.spec import RenderSpec


@pytest.fixture
def vgg16(vgg16_home):
    return load_model("vgg16")


def test_own_channels_equal_those_channels_of_the_whole_layer(vgg16) -> None:
    path = resolve_layer("vgg16", "block3_conv2", 64).module_path
    pixels = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
    channels = torch.tensor([5, 0, 255, 17])
    with torch.no_grad():
        (whole,) = FeatureExtractor(vgg16, [path])(pixels)
        extractor = ChannelExtractor(vgg16, path)
        own = extractor(pixels, channels)
    assert extractor.computes_alone
    assert own.shape == (4, 16, 16)
    torch.testing.assert_close(own, whole[torch.arange(4), channels], rtol=1e-4, atol=1e-3)


def test_views_of_the_rows_each_get_their_rows_channel(vgg16) -> None:
    path = resolve_layer("vgg16", "block2_conv1", 32).module_path
    pixels = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 255  # 2 views of 3 rows
    channels = torch.tensor([3, 9, 100])
    with torch.no_grad():
        (whole,) = FeatureExtractor(vgg16, [path])(pixels)
        own = ChannelExtractor(vgg16, path)(pixels, channels.repeat(2))
    torch.testing.assert_close(own, whole[torch.arange(6), channels.repeat(2)], rtol=1e-4, atol=1e-3)


def test_gradients_through_own_channels_equal_the_whole_layers(vgg16) -> None:
    path = resolve_layer("vgg16", "block4_conv1", 64).module_path
    start = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 255
    channels = torch.tensor([7, 300])
    pickers = (
        lambda pixels: FeatureExtractor(vgg16, [path])(pixels)[0][torch.arange(2), channels],
        lambda pixels: ChannelExtractor(vgg16, path)(pixels, channels),
    )
    grads = []
    for picked_from in pickers:
        pixels = start.clone().requires_grad_(True)
        torch.relu(picked_from(pixels)).mean(dim=(1, 2)).sum().backward()
        grads.append(pixels.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-3, atol=1e-5)


def test_own_channels_have_one_shape_whether_computed_alone_or_taken_from_the_layer(vgg16) -> None:
    pool = resolve_layer("vgg16", "block1_pool", 64).module_path
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3)) * 255
    channels = torch.tensor([1, 60])
    with torch.no_grad():
        (whole,) = FeatureExtractor(vgg16, [pool])(pixels)
        own = ChannelExtractor(vgg16, pool)(pixels, channels)
    assert own.shape == (2, 32, 32)
    torch.testing.assert_close(own, whole[torch.arange(2), channels])


def test_only_a_single_plain_conv_computes_channels_alone(vgg16, monkeypatch) -> None:
    conv, pool = (resolve_layer("vgg16", name, 64) for name in ("block1_conv1", "block1_pool"))
    assert not ChannelExtractor(vgg16, pool.module_path).computes_alone
    grouped_convs = []
    monkeypatch.setattr(features, "conv_at_channels", lambda *args: grouped_convs.append(args) or None)
    rows = [Row(0, 0, 0, 0, conv, 1.0), Row(0, 1, 0, 0, pool, 1.0)]  # a chunk of a conv's and a pool's rows
    chunk = ChunkObjective(RenderSpec(layer="block1_conv1", filters="0-1", size=64), rows, vgg16, torch.device("cpu"))
    chunk.measure(torch.rand(2, 3, 64, 64) * 255)
    assert not grouped_convs
    lite0 = load_model("efficientnet_lite0")
    assert not ChannelExtractor(lite0, resolve_layer("efficientnet_lite0", "blocks.2", 64).module_path).computes_alone
