"""The catalog's shape arithmetic (core.engine.layers._MetaShapes) against torch's own meta kernels: the
same shapes for every op it answers, the same layer tables and FLOPs for whole networks, and a VGG16
layer resolved without importing sympy (torch's meta conv checks do, 0.4 s of a render's start-up)."""

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from core.engine import layers
from core.engine.models import build_architecture

CONVS = [  # (input shape, weight shape, stride, padding, dilation, groups)
    ((2, 3, 128, 128), (64, 3, 3, 3), 1, 1, 1, 1),
    ((1, 3, 224, 224), (64, 3, 11, 11), 4, 2, 1, 1),
    ((1, 3, 97, 61), (8, 3, 7, 7), (2, 2), (3, 3), (1, 1), 1),
    ((1, 32, 33, 17), (32, 1, 3, 3), 2, 1, 1, 32),
    ((1, 16, 40, 40), (24, 8, 3, 5), (1, 2), (2, 0), (2, 1), 2),
    ((1, 8, 9, 9), (4, 8, 3, 3), 1, "valid", 1, 1),
]
POOLS = [  # (input shape, kernel, stride, padding, dilation, ceil mode)
    ((1, 64, 128, 128), 2, 2, 0, 1, False),
    ((1, 64, 112, 112), 3, 2, 0, 1, True),
    ((1, 64, 113, 57), 3, 2, 1, 1, True),
    ((1, 8, 7, 7), 3, 2, 1, 1, True),
    ((1, 8, 31, 30), (3, 2), (2, 1), (1, 0), (2, 1), False),
    ((1, 8, 16, 16), 2, None, 0, 1, False),
]


def with_mode(func, *args, **kwargs) -> tuple[int, ...]:
    with layers._MetaShapes():
        return tuple(func(*args, **kwargs).shape)


def meta(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.empty(shape, device="meta")


@pytest.mark.parametrize(("x", "weight", "stride", "padding", "dilation", "groups"), CONVS)
def test_conv_shapes_are_torchs(x, weight, stride, padding, dilation, groups):
    args = (meta(x), meta(weight), None, stride, padding, dilation, groups)
    assert with_mode(F.conv2d, *args) == tuple(F.conv2d(*args).shape)


@pytest.mark.parametrize(("x", "kernel", "stride", "padding", "dilation", "ceil_mode"), POOLS)
def test_max_pool_shapes_are_torchs(x, kernel, stride, padding, dilation, ceil_mode):
    args, kwargs = (meta(x), kernel, stride, padding, dilation), {"ceil_mode": ceil_mode}
    assert with_mode(F.max_pool2d, *args, **kwargs) == tuple(F.max_pool2d(*args, **kwargs).shape)


@pytest.mark.parametrize("size", [7, (7, 7), (1, None), (3, 5)])
def test_adaptive_pool_shapes_are_torchs(size):
    x = meta((2, 16, 12, 9))
    assert with_mode(F.adaptive_avg_pool2d, x, size) == tuple(F.adaptive_avg_pool2d(x, size).shape)


def test_arguments_that_do_not_fit_are_refused_by_torch():
    with pytest.raises(RuntimeError), layers._MetaShapes():
        F.conv2d(meta((1, 4, 8, 8)), meta((8, 3, 3, 3)))  # 4 channels in, the weight wants 3
    with pytest.raises(RuntimeError), layers._MetaShapes():
        F.conv2d(meta((1, 3, 2, 2)), meta((8, 3, 3, 3)))  # smaller than the kernel


class _TorchsShapes(torch.overrides.TorchFunctionMode):
    """No arithmetic of our own: every op to torch's meta kernels."""

    def __torch_function__(self, func, _types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("model", ["vgg16", "alexnet", "googlenet", "resnet50", "efficientnet_lite0"])
@pytest.mark.parametrize("size", [(128, 128), (97, 161), (32, 32)])
def test_whole_networks_trace_as_with_torchs_kernels(monkeypatch, model, size):
    with torch.device("meta"):
        network = build_architecture(model).eval()
    ours = (layers._trace_shapes(network, size), layers.forward_flops.__wrapped__(model, size))
    monkeypatch.setattr(layers, "_MetaShapes", _TorchsShapes)
    assert (layers._trace_shapes(network, size), layers.forward_flops.__wrapped__(model, size)) == ours
    assert ours[0], "the trace recorded shapes"


RESOLVE_AND_LIST_IMPORTS = """
import json, sys
from core.engine.layers import forward_flops, resolve_layer
layer = resolve_layer("vgg16", "block4_conv1", 128)
forward_flops("vgg16", (128, 128))
print(json.dumps([layer.output_shape, "sympy" in sys.modules, "torch._dynamo" in sys.modules]))
"""


def test_a_vgg16_layer_resolves_without_sympy_or_dynamo():
    done = subprocess.run([sys.executable, "-c", RESOLVE_AND_LIST_IMPORTS], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[512, 16, 16], False, False]
