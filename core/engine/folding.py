"""Eval-mode BatchNorm folded into the convolution before it: one conv a step instead of conv + BN.

A frozen network's BatchNorm is a per-channel affine map, so ``bn(conv(x))`` is a single conv with
scaled weights and a shifted bias (``torch.nn.utils.fusion.fuse_conv_bn_weights``); the BN's own
pass, forward and back, was about a quarter of every step on efficientnet_lite0 (profiled: 31 % of
a robust step at blocks.1, 27 % at blocks.5). Nothing is rewired: module paths, weights and hooks
stay as they are, and a conv that carries a hook (a probed layer, whose output must be the conv's
own) runs unfolded, its BN normalizing as before. A BN after a folded conv skips only the
normalization, keeping whatever it does after it (timm's ``BatchNormAct2d``: dropout, activation);
where that is a ReLU or ReLU6 alone, the conv applies it in its own kernel (core.engine.fusion), unless
a hook watches the BN's input or the activation.

Pairs are found by one probe forward pass, not by module names: a conv whose output is the BN's
input and is consumed by nothing else (counted in the autograd graph), each called once.
"""

import logging
import weakref
from collections import Counter
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from core.engine.fusion import Activation, activation_of, conv_activation, conv_alone, fusable

log = logging.getLogger(__name__)

PROBE_SIDE = 64  # pixels: the probe's input; small, and enough for every architecture's stem


def _after_normalization(bn: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """What ``bn`` does to its normalized input; None for a kind of BN this module does not know."""
    if type(bn) is nn.BatchNorm2d:
        return lambda x: x
    if type(bn).__name__ == "BatchNormAct2d" and type(bn).__module__.startswith("timm."):
        return lambda x: bn.act(bn.drop(x))  # type: ignore[operator]
    return None


def _activation_module(bn: nn.Module) -> nn.Module | None:
    """The activation of a BN (timm's ``BatchNormAct2d``) whose whole work after normalizing is that
    activation, else None (a plain BatchNorm2d has none)."""
    return bn.act if isinstance(getattr(bn, "drop", None), nn.Identity) else None  # type: ignore[return-value]


class _Fold:
    """One (conv, bn) pair: the conv's forward computes both where nobody watches the conv itself."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, after: Callable[[torch.Tensor], torch.Tensor]) -> None:
        assert bn.running_mean is not None and bn.running_var is not None  # _pairs takes only such BNs
        weight, bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
        )
        self._weight = weight.detach().contiguous(memory_format=torch.channels_last)
        self._bias = bias.detach()
        self._conv, self._bn, self._after = conv, bn, after
        self._activation = _activation_module(bn)
        self._plain_bn = bn.forward
        self._folded: weakref.ref[torch.Tensor] | None = None  # the last output the conv already normalized
        self._activated = False  # ... and whether it also applied the BN's activation
        setattr(conv, "forward", self.conv_forward)  # noqa: B010 (an instance's forward, not the class's)
        setattr(bn, "forward", self.bn_forward)  # noqa: B010

    def conv_forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self._conv
        if conv._forward_hooks or conv._forward_pre_hooks:  # its own output, unnormalized
            return conv_alone(conv, x, conv.weight, conv.bias)
        activation = self._fusable_activation(x)
        if activation is None:
            out = conv_alone(conv, x, self._weight, self._bias)
        else:
            out = conv_activation(conv, x, activation, self._weight, self._bias)
        self._folded, self._activated = weakref.ref(out), activation is not None
        return out

    def _fusable_activation(self, x: torch.Tensor) -> Activation | None:
        if self._activation is None or self._bn._forward_pre_hooks or not fusable(self._conv, x):
            return None
        return activation_of(self._activation)

    def bn_forward(self, x: torch.Tensor) -> torch.Tensor:
        folded = self._folded() if self._folded is not None else None
        self._folded = None
        if folded is not x:
            return self._plain_bn(x)
        return x if self._activated else self._after(x)


def _pairs(network: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """(conv, bn) pairs whose BN normalizes the conv's output and nothing else reads it, from a probe pass."""
    convs = [m for m in network.modules() if type(m) is nn.Conv2d and m.padding_mode == "zeros"]
    norms = [m for m in network.modules() if isinstance(m, nn.BatchNorm2d) and m.running_var is not None]
    if not convs or not norms:
        return []
    calls: Counter[nn.Module] = Counter()
    outputs: dict[nn.Module, torch.Tensor] = {}
    inputs: dict[nn.Module, torch.Tensor] = {}

    def seen_output(module: nn.Module, _: object, output: torch.Tensor) -> None:
        calls[module] += 1
        outputs[module] = output

    def seen_input(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        calls[module] += 1
        inputs[module] = args[0]

    handles = [conv.register_forward_hook(seen_output) for conv in convs]
    handles += [bn.register_forward_pre_hook(seen_input) for bn in norms]
    device = next(network.parameters()).device
    try:
        with torch.enable_grad():
            result = network(torch.zeros(1, 3, PROBE_SIDE, PROBE_SIDE, device=device, requires_grad=True))
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(result, torch.Tensor) or result.grad_fn is None:
        return []
    readers = _readers(result.grad_fn)
    conv_of_output = {id(outputs[conv]): conv for conv in convs if calls[conv] == 1}
    pairs = []
    for bn in norms:
        x = inputs.get(bn)
        conv = conv_of_output.get(id(x))
        if x is not None and conv is not None and calls[bn] == 1 and outputs[conv] is x and readers[x.grad_fn] == 1:
            pairs.append((conv, bn))
    return pairs


def _readers(root: torch.autograd.graph.Node) -> Counter:
    """How many operations of the graph behind ``root`` read each node's output."""
    readers: Counter = Counter()
    seen, stack = {root}, [root]
    while stack:
        node = stack.pop()
        for parent, _ in node.next_functions:
            if parent is None:
                continue
            readers[parent] += 1
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return readers


def fold_batch_norms(network: nn.Module) -> int:
    """Fold every eval-mode BatchNorm of ``network`` that follows a conv alone into it; the number folded.
    The network must be in eval mode, its weights loaded and on their device (the folded weights are made
    there, once); a probe that fails folds nothing."""
    try:
        pairs = _pairs(network)
    except Exception:  # an architecture the probe cannot run at PROBE_SIDE: left as it is, correct and slower
        log.debug("no BatchNorm folded: the probe pass failed", exc_info=True)
        return 0
    folded = 0
    for conv, bn in pairs:
        after = _after_normalization(bn)
        if after is not None:
            _Fold(conv, bn, after)
            folded += 1
    return folded
