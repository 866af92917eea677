"""Run a network only as far as one layer and hand back that layer's output."""

import torch
from torch import nn


class _ReachedLayer(Exception):
    """Raised by the hook to stop the forward pass once the target layer has produced its output."""


class LayerProbe:
    """``probe(pixels)`` -> the output of the module at ``module_path``, computing nothing after it.

    The network is the ``Sequential(normalize, network)`` from ``load_model``; ``module_path`` is a
    module path inside ``network`` (as in the layer catalog; "" for the network's own output).
    """

    def __init__(self, model: nn.Sequential, module_path: str) -> None:
        self._model = model
        self._target = model[1].get_submodule(module_path)
        self._output: torch.Tensor | None = None

    def _capture(self, _module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        self._output = output
        raise _ReachedLayer

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, C, h, w)
        handle = self._target.register_forward_hook(self._capture)
        try:
            self._model(pixels)
        except _ReachedLayer:
            pass
        finally:
            handle.remove()
        output, self._output = self._output, None
        if output is None:
            raise RuntimeError("the forward pass never reached the target layer")
        return output
