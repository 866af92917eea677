"""Run a network only as far as the deepest of some layers and hand back those layers' outputs."""

from collections.abc import Sequence

import torch
from torch import nn


class _ReachedLayer(Exception):
    """Raised by a hook to stop the forward pass once every target layer has produced its output."""


class LayerProbe:
    """``probe(pixels)`` -> the outputs of the modules at ``module_paths``, computing nothing after the last.

    The network is the ``Sequential(normalize, network)`` from ``load_model``; each path is a module
    path inside ``network`` (as in the layer catalog; "" for the network's own output). Outputs come
    back in the order of ``module_paths``.
    """

    def __init__(self, model: nn.Sequential, module_paths: Sequence[str]) -> None:
        self._model = model
        self._paths = list(module_paths)
        self._targets = {path: model[1].get_submodule(path) for path in self._paths}

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
