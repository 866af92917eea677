"""Feature extraction: run a network only as far as some layers and hand back what they output.

Two extractors, each with one output shape whatever it computes inside:

- ``FeatureExtractor(model, paths)(pixels)``: each layer's whole output, (N, C, h, w) (or (N, C)
  for a vector output such as the logits), computing nothing after the deepest layer;
- ``ChannelExtractor(model, path)(pixels, channels)``: each row's own channel of one layer,
  (N, h, w) (or (N,)). Where the layer is a plain convolution only those channels are computed,
  as one convolution grouped by row (``computes_alone``); otherwise they are taken from the
  whole output.

``model`` is the ``Sequential(normalize, network)`` from ``load_model``; a path is a module path
inside ``network`` (as in the layer catalog; "" for the network's own output). A vision
transformer's token outputs, (N, prefix + h*w, C), come as feature maps (N, C, h, w) of its patch
tokens (:class:`TokenGrid`), so objectives see a ViT's blocks as they see a CNN's layers.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from core.errors import UnknownLayer


class _ReachedLayer(Exception):
    """Raised by a hook to stop the forward pass once every layer wanted has produced its output."""


def select_channels(output: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """(N, C, ...) -> (N, ...): each row's own channel."""
    return output[torch.arange(len(channels), device=output.device), channels]


def conv_at_channels(conv: nn.Conv2d, x: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """(N, h, w): ``conv(x)`` at each row's own output channel only, as one convolution grouped by row.

    A step that climbs one filter needs just that filter's map: at VGG16's block4_conv1 this is
    1/512 of the layer's arithmetic forward and back (measured: 54 ms -> 13 ms per 16-row step).
    """
    batch, _, height, width = x.shape
    bias = None if conv.bias is None else conv.bias[channels]
    weight = conv.weight[channels]
    out = F.conv2d(x.reshape(1, -1, height, width), weight, bias, conv.stride, conv.padding, conv.dilation, batch)
    return out.view(batch, *out.shape[-2:])


def _run(model: nn.Sequential, pixels: torch.Tensor, handles: list[RemovableHandle]) -> None:
    """The forward pass, until a hook has seen enough; the hooks are removed either way."""
    try:
        model(pixels)
    except _ReachedLayer:
        pass
    finally:
        for handle in handles:
            handle.remove()


class TokenGrid:
    """A vision transformer's token sequences seen as feature maps: (N, prefix + h*w, C) -> (N, C, h, w).

    The class and register tokens (the first ``num_prefix_tokens``) are left out; (h, w) is the patch
    grid of the input's size (timm's ``patch_embed.dynamic_feat_size``: padded to whole patches).
    """

    def __init__(self, prefix_tokens: int, feature_size: Callable[[tuple[int, int]], tuple[int, int]]) -> None:
        self._prefix = prefix_tokens
        self._feature_size = feature_size

    def __call__(self, tokens: torch.Tensor, pixels_size: tuple[int, int]) -> torch.Tensor:
        height, width = self._feature_size(pixels_size)
        patches = tokens[:, self._prefix :]
        return patches.transpose(1, 2).reshape(len(tokens), tokens.shape[-1], height, width)

    def fits(self, output: object, pixels_size: tuple[int, int]) -> bool:
        """Whether ``output`` is a token sequence of this network at this input size."""
        height, width = self._feature_size(pixels_size)
        return (
            isinstance(output, torch.Tensor) and output.dim() == 3 and output.shape[1] == self._prefix + height * width
        )


def token_grid(network: nn.Module) -> TokenGrid | None:
    """The network's token grid where it is a vision transformer of timm's kind; None for a CNN."""
    embed = getattr(network, "patch_embed", None)
    prefix = getattr(network, "num_prefix_tokens", None)
    if not isinstance(prefix, int) or not callable(getattr(embed, "dynamic_feat_size", None)):
        return None
    return TokenGrid(prefix, embed.dynamic_feat_size)  # type: ignore[union-attr]


def _never_reached(paths: Sequence[str]) -> UnknownLayer:
    return UnknownLayer(f"the model's forward pass never runs {', '.join(paths)}: it cannot be visualized")


class FeatureExtractor:
    """``extractor(pixels)`` -> the whole outputs of the modules at ``module_paths``, in their order."""

    def __init__(self, model: nn.Sequential, module_paths: Sequence[str]) -> None:
        self._model = model
        self._paths = list(module_paths)
        self._modules = {path: model[1].get_submodule(path) for path in self._paths}
        self._grid = token_grid(model[1])

    def __call__(self, pixels: torch.Tensor) -> list[torch.Tensor]:  # (N, 3, H, W) -> [(N, C, h, w), ...]
        captured: dict[str, torch.Tensor] = {}
        size, grid = (pixels.shape[-2], pixels.shape[-1]), self._grid

        def capture(path: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], torch.Tensor | None]:
            def hook(
                _module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor
            ) -> torch.Tensor | None:
                if path in captured:
                    return None  # a module run twice: its first output is the layer's
                captured[path] = grid(output, size) if grid is not None and grid.fits(output, size) else output
                if len(captured) == len(self._modules):
                    raise _ReachedLayer
                return output.clone()  # the network goes on: keep what it does in place (ReLU) off ours

            return hook

        _run(self._model, pixels, [module.register_forward_hook(capture(p)) for p, module in self._modules.items()])
        missing = [path for path in self._paths if path not in captured]
        if missing:
            raise _never_reached(missing)
        return [captured[path] for path in self._paths]


def _plain_conv(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups == 1 and module.padding_mode == "zeros"


class ChannelExtractor:
    """``extractor(pixels, channels)`` -> (N, h, w): each row's own channel of the module at ``module_path``.

    ``channels`` (N,) holds one channel per row of ``pixels``.
    """

    def __init__(self, model: nn.Sequential, module_path: str) -> None:
        self._model = model
        self._path = module_path
        self._module = model[1].get_submodule(module_path)
        self.computes_alone = _plain_conv(self._module)  # only the rows' channels: 1/C of the layer's arithmetic
        self._whole = FeatureExtractor(model, [module_path])

    def __call__(self, pixels: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        if not self.computes_alone:
            (output,) = self._whole(pixels)
            return select_channels(output, channels)
        captured: list[torch.Tensor] = []

        def at_channels_instead(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            captured.append(conv_at_channels(module, inputs[0], channels))  # type: ignore[arg-type]
            raise _ReachedLayer  # nothing after this layer, nor the whole layer, is needed

        _run(self._model, pixels, [self._module.register_forward_pre_hook(at_channels_instead)])
        if not captured:
            raise _never_reached([self._path])
        return captured[0]
