"""Run a network only as far as the deepest of some layers and hand back those layers' outputs."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class _ReachedLayer(Exception):
    """Raised by a hook to stop the forward pass once every target layer has produced its output."""


def own_channels(conv: nn.Conv2d, x: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """(B, 1, h, w): ``conv(x)`` at each row's own output channel only, as one convolution grouped by row.

    A step that climbs one filter needs just that filter's map: at VGG16's block4_conv1 this is
    1/512 of the layer's arithmetic forward and back (measured: 54 ms -> 13 ms per 16-row step).
    """
    batch, _, height, width = x.shape
    bias = None if conv.bias is None else conv.bias[channels]
    out = F.conv2d(x.reshape(1, -1, height, width), conv.weight[channels], bias, conv.stride, conv.padding,
                   conv.dilation, groups=batch)  # fmt: skip
    return out.view(batch, 1, *out.shape[-2:])


def _selectable(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups == 1 and module.padding_mode == "zeros"


class LayerProbe:
    """``probe(pixels)`` -> the outputs of the modules at ``module_paths``, computing nothing after the last.

    The network is the ``Sequential(normalize, network)`` from ``load_model``; each path is a module
    path inside ``network`` (as in the layer catalog; "" for the network's own output). Outputs come
    back in the order of ``module_paths``.

    With ``channels`` (B,) and a single path that is a plain convolution, the output is (B, 1, h, w):
    each row's own channel, computed alone (``own_channels``); ``selects_channels`` says whether
    that is what this probe does.
    """

    def __init__(self, model: nn.Sequential, module_paths: Sequence[str], channels: torch.Tensor | None = None) -> None:
        self._model = model
        self._paths = list(module_paths)
        self._targets = {path: model[1].get_submodule(path) for path in self._paths}
        only = self._targets[self._paths[0]] if len(self._paths) == 1 else None
        self._channels = channels if channels is not None and only is not None and _selectable(only) else None
        self.selects_channels = self._channels is not None

    def __call__(self, pixels: torch.Tensor) -> list[torch.Tensor]:  # (B, 3, H, W) -> [(B, C, h, w), ...]
        captured: dict[str, torch.Tensor] = {}

        def capture(path: str):
            def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
                if path in captured:
                    return None  # a module run twice: its first output is the layer's
                captured[path] = output
                if len(captured) == len(self._targets):
                    raise _ReachedLayer
                return output.clone()  # the network goes on: keep what it does in place (ReLU) off ours

            return hook

        def own_channels_instead(path: str):
            def hook(module: nn.Module, inputs: tuple) -> None:
                rows = inputs[0]  # the pixels' rows: one or more views of the probe's rows, view after view
                captured[path] = own_channels(module, rows, self._channels.repeat(len(rows) // len(self._channels)))
                raise _ReachedLayer  # the only target: nothing after it, nor the full layer, is needed

            return hook

        if self._channels is not None:
            handles = [module.register_forward_pre_hook(own_channels_instead(path)) for path, module in self._targets.items()]
        else:
            handles = [module.register_forward_hook(capture(path)) for path, module in self._targets.items()]
        try:
            self._model(pixels)
        except _ReachedLayer:
            pass
        finally:
            for handle in handles:
                handle.remove()
        missing = [path for path in self._paths if path not in captured]
        if missing:
            raise RuntimeError(f"the forward pass never reached {', '.join(missing)}")
        return [captured[path] for path in self._paths]
