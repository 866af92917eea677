"""Scoring pictures by what their 8-bit PNGs do to the filter, as a client would see them.

The target filter's mean activation on the PNG as it is, the same averaged over random
jitter/scale/rotation of it (noise that fools the filter collapses under a small move; real
structure survives), and the fraction of dead filters.
"""

import io
from collections.abc import Iterable
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from core.engine.features import FeatureExtractor, select_channels
from core.engine.layers import LayerInfo
from core.engine.objectives import Activations, channel
from core.engine.transforms import random_warp

EVAL_WARPS = 16


class EncodedPicture(Protocol):
    """Anything the engine returns for one picture: only its PNG is read."""

    @property
    def png(self) -> bytes | None: ...


def decode(pictures: Iterable[EncodedPicture]) -> torch.Tensor:
    """The pictures' PNGs as one (B, H, W, 3) uint8 tensor."""
    return torch.stack([_pixels(picture.png) for picture in pictures])


def _pixels(png: bytes | None) -> torch.Tensor:
    if png is None:
        raise ValueError("a picture without its PNG cannot be scored")
    return torch.from_numpy(np.array(Image.open(io.BytesIO(png)).convert("RGB")))


def score(
    model: torch.nn.Sequential, layer: LayerInfo, filters: list[int], pictures: torch.Tensor
) -> tuple[float, float, float]:
    """(mean activation, mean activation under random warps, dead fraction) of (B, H, W, 3) uint8 pictures."""
    features = FeatureExtractor(model, [layer.module_path])
    targets = torch.tensor(filters)
    pixels = pictures.permute(0, 3, 1, 2).float()

    def measure(x: torch.Tensor) -> torch.Tensor:
        (output,) = features(x)
        return channel()(Activations(select_channels(torch.relu(output) if layer.relu else output, targets)))

    with torch.no_grad():
        plain = measure(pixels)
        generators = [torch.Generator().manual_seed(1000 + i) for i in range(len(filters))]
        warped = torch.stack([measure(random_warp(pixels, generators)) for _ in range(EVAL_WARPS)]).mean(dim=0)
    return plain.mean().item(), warped.mean().item(), (plain <= 0).float().mean().item()
