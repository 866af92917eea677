"""The layer probe: stopping at a layer, and computing only each row's own channel of a conv."""

import pytest
import torch

from core.engine import load_model, resolve_layer
from core.engine.features import LayerProbe


@pytest.fixture
def vgg16(vgg16_home):
    return load_model("vgg16")


def test_own_channels_equal_those_channels_of_the_whole_layer(vgg16) -> None:
    path = resolve_layer("vgg16", "block3_conv2", 64).module_path
    pixels = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
    channels = torch.tensor([5, 0, 255, 17])
    with torch.no_grad():
        (whole,) = LayerProbe(vgg16, [path])(pixels)
        probe = LayerProbe(vgg16, [path], channels)
        (own,) = probe(pixels)
    assert probe.selects_channels
    assert own.shape == (4, 1, 16, 16)
    torch.testing.assert_close(own[:, 0], whole[torch.arange(4), channels], rtol=1e-4, atol=1e-3)


def test_views_of_the_rows_each_get_their_rows_channel(vgg16) -> None:
    path = resolve_layer("vgg16", "block2_conv1", 32).module_path
    pixels = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 255  # 2 views of 3 rows
    channels = torch.tensor([3, 9, 100])
    with torch.no_grad():
        (whole,) = LayerProbe(vgg16, [path])(pixels)
        (own,) = LayerProbe(vgg16, [path], channels)(pixels)
    torch.testing.assert_close(own[:, 0], whole[torch.arange(6), channels.repeat(2)], rtol=1e-4, atol=1e-3)


def test_gradients_through_own_channels_equal_the_whole_layers(vgg16) -> None:
    path = resolve_layer("vgg16", "block4_conv1", 64).module_path
    start = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 255
    channels = torch.tensor([7, 300])
    grads = []
    for probe in (LayerProbe(vgg16, [path]), LayerProbe(vgg16, [path], channels)):
        pixels = start.clone().requires_grad_(True)
        (output,) = probe(pixels)
        picked = output[:, 0] if probe.selects_channels else output[torch.arange(2), channels]
        torch.relu(picked).mean(dim=(1, 2)).sum().backward()
        grads.append(pixels.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-3, atol=1e-5)


def test_only_a_single_plain_conv_computes_channels_alone(vgg16) -> None:
    conv, pool = (resolve_layer("vgg16", name, 64).module_path for name in ("block1_conv1", "block1_pool"))
    channels = torch.tensor([0])
    assert not LayerProbe(vgg16, [pool], channels).selects_channels
    assert not LayerProbe(vgg16, [conv, pool], channels).selects_channels
    lite0 = load_model("efficientnet_lite0")
    assert not LayerProbe(lite0, [resolve_layer("efficientnet_lite0", "blocks.2", 64).module_path], channels).selects_channels
