"""A convolution and the activation after it as one oneDNN kernel on the CPU, with PyTorch's own backward.

The activation's separate pass over the conv's output costs as much as a third of the conv itself
in bf16 (measured on VGG16's first block: 13.6 ms plain, 8.9 ms fused); an in-place ReLU6 on the
CPU runs as a clamp plus a copy back, 17-19 % of a robust step on efficientnet_lite0. Containers
are only re-run, not rewired: module paths, weights and hooks stay as they are, and a conv or
activation that carries a hook (a probed layer) runs unfused, so its output is seen exactly as before.

Two users: ``FusingSequential`` (a Sequential's (Conv2d, ReLU) pairs: VGG, AlexNet) and
core.engine.folding (a conv whose folded BatchNorm ends in a ReLU or ReLU6: timm's EfficientNets; and,
through ``conv_alone``, a strided depthwise conv under bf16 with no activation fused, for the fp32
input gradient this kernel takes there: torchvision's MobileNets, a probed conv).
"""

from collections import OrderedDict
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn


@dataclass(frozen=True)
class Activation:
    """An activation oneDNN applies in the conv's kernel: its post-op name and arguments (a clip's bounds,
    none for ReLU; post-op "none" is no activation at all). Its gradient is read from the output alone:
    ReLU and ReLU6 pass it exactly where the output is strictly inside their bounds."""

    post_op: str
    scalars: tuple[float, ...] = ()

    def gradient(self, grad: torch.Tensor, output: torch.Tensor | None) -> torch.Tensor:
        if self.post_op == "relu":
            return torch.ops.aten.threshold_backward(grad, output, 0)
        if self.post_op == "hardtanh":
            return torch.ops.aten.hardtanh_backward(grad, output, *self.scalars)
        return grad  # "none"


RELU = Activation("relu")
RELU6 = Activation("hardtanh", (0.0, 6.0))
IDENTITY = Activation("none")  # the conv alone: run through this module for its input gradient (conv_alone)


def activation_of(module: nn.Module) -> Activation | None:
    """The fusable activation ``module`` is (an unhooked ReLU or ReLU6), else None."""
    if module._forward_hooks or module._forward_pre_hooks:
        return None
    return {nn.ReLU: RELU, nn.ReLU6: RELU6}.get(type(module))


class _ConvActivation(torch.autograd.Function):
    """activation(conv2d(x, weight, bias)) in one kernel; the input's gradient only (weights are frozen)."""

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        conv: nn.Conv2d,
        activation: Activation,
    ) -> torch.Tensor:
        y = torch.ops.mkldnn._convolution_pointwise(
            x,
            weight,
            bias,
            list(conv.padding),
            list(conv.stride),
            list(conv.dilation),
            conv.groups,
            activation.post_op,
            list(activation.scalars),
            "",
        )
        # without an activation its gradient needs no output (which an in-place op after it may change)
        ctx.save_for_backward(x, weight, None if activation == IDENTITY else y)
        ctx.conv, ctx.activation = conv, activation
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None, None]:
        x, weight, y = ctx.saved_tensors
        conv, dtype = ctx.conv, x.dtype
        grad = ctx.activation.gradient(grad, y)
        if _slow_in_bf16(conv, x):
            grad, x, weight = grad.float(), x.float(), weight.float()
        (grad_x, _, _) = torch.ops.aten.convolution_backward(
            grad,
            x,
            weight,
            None,
            list(conv.stride),
            list(conv.padding),
            list(conv.dilation),
            False,
            [0, 0],
            conv.groups,
            [True, False, False],
        )
        return grad_x.to(dtype), None, None, None, None


def _slow_in_bf16(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """A strided depthwise conv (a downsampling) in bf16: oneDNN's bf16 input gradient of it is many times
    slower than its fp32 one on the CPU, casts included (6-27x on four of efficientnet_lite0's, batch 16,
    on an AMD EPYC with AVX512-BF16; 12 robust steps on blocks.3 spent 1.34 s in conv gradients in bf16,
    0.33 s in fp32, and 0.28 s in bf16 with these in fp32). Not so a grouped conv of several channels a
    group (ResNeXt's: 2.3 ms in bf16, 6.9 ms through fp32)."""
    return x.dtype == torch.bfloat16 and _strided_depthwise(conv)


def _strided_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels and max(conv.stride) > 1


@cache
def fused_bf16_supported() -> bool:
    """oneDNN's fused kernel refuses bf16 on CPUs without AVX512-BW or AVX-NE-CONVERT (plain convs do not)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def fusable(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether ``conv`` can run on ``x`` in oneDNN's fused kernel with an activation: the kernel takes it and
    no hook watches the conv's own output (the activation's own check: activation_of)."""
    return _kernel_takes(conv, x) and not (conv._forward_hooks or conv._forward_pre_hooks)


def _kernel_takes(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and (not torch.is_autocast_enabled("cpu") or fused_bf16_supported())
        and isinstance(conv.padding, tuple)
        and conv.padding_mode == "zeros"
    )


def conv_activation(
    conv: nn.Conv2d,
    x: torch.Tensor,
    activation: Activation,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``activation(conv(x))`` as one kernel, with ``conv``'s own weight and bias unless given others
    (a folded BatchNorm's)."""
    if weight is None:
        weight, bias = conv.weight, conv.bias
    if torch.is_autocast_enabled("cpu"):  # what autocast would do to a conv's arguments
        dtype = torch.get_autocast_dtype("cpu")
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    return _ConvActivation.apply(x, weight, bias, conv, activation)


def conv_alone(conv: nn.Conv2d, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``conv(x)`` with these weights and no activation after it (a folded conv whose BatchNorm's activation
    runs on its own, or a probed conv, unfolded): a strided depthwise conv under bf16 autocast runs as this
    module's kernel, which takes its input gradient in fp32; any other as the conv itself does. The output
    is the conv's either way, so a hook on the conv sees what it saw."""
    if _strided_depthwise(conv) and torch.is_autocast_enabled("cpu") and _kernel_takes(conv, x):
        return conv_activation(conv, x, IDENTITY, weight, bias)
    return conv._conv_forward(x, weight, bias)


class FusingSequential(nn.Sequential):
    """A Sequential that runs each unhooked (Conv2d, ReLU) pair of its children as one fused kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        children = list(self)
        index = 0
        while index < len(children):
            conv = children[index]
            activation = activation_of(children[index + 1]) if index + 1 < len(children) else None
            if activation is not None and isinstance(conv, nn.Conv2d) and fusable(conv, x):
                x = conv_activation(conv, x, activation)
                index += 2
            else:
                x = children[index](x)
                index += 1
        return x


def fuse_conv_relu(network: nn.Module) -> nn.Module:
    """Make every Sequential of ``network`` with a Conv2d directly before a ReLU a FusingSequential."""
    if not torch.backends.mkldnn.is_available():
        return network
    for module in list(network.modules()):
        for name, child in list(module.named_children()):
            layers = list(child.children())
            if type(child) is nn.Sequential and any(
                isinstance(a, nn.Conv2d) and isinstance(b, nn.ReLU) for a, b in zip(layers, layers[1:], strict=False)
            ):
                setattr(module, name, FusingSequential(OrderedDict(child.named_children())))
    return network
