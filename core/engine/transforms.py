"""Transformation robustness: every optimization step sees each image slightly moved.

Lucid's standard recipe (pad 12 with gray, jitter 8, scale 0.9-1.1, rotate +-10 degrees, jitter 4)
composed into one affine warp per row, so a whole batch is moved by a single ``grid_sample``
and each row draws its own transform from its own generator (reproducible, batch-invariant).
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

GRAY = 127.5


@dataclass(frozen=True)
class Jitter:
    """Ranges of the random moves, in pixels and degrees."""

    pad: int = 12
    shift: int = 12  # total translation range: Lucid's jitter 8 then jitter 4
    scale: tuple[float, float] = (0.9, 1.1)
    degrees: float = 10.0
    still_fraction: float = 5 / 26  # Lucid draws 0 degrees 5 extra times out of 26


STANDARD = Jitter()


def _draw(generator: torch.Generator, jitter: Jitter) -> tuple[float, float, float, float]:
    """(shift x px, shift y px, scale, angle rad) for one row."""
    u = torch.rand(5, generator=generator).tolist()
    half = jitter.shift / 2
    shift_x = round(u[0] * jitter.shift - half)
    shift_y = round(u[1] * jitter.shift - half)
    scale = jitter.scale[0] + u[2] * (jitter.scale[1] - jitter.scale[0])
    angle = 0.0 if u[3] < jitter.still_fraction else (u[4] * 2 - 1) * math.radians(jitter.degrees)
    return shift_x, shift_y, scale, angle


def random_warp(pixels: torch.Tensor, generators: list[torch.Generator], jitter: Jitter = STANDARD) -> torch.Tensor:
    """(B, 3, H, W) pixels -> (B, 3, H + 2 pad, W + 2 pad), each row moved by its own random draw."""
    padded = F.pad(pixels, [jitter.pad] * 4, value=GRAY)
    batch, _, height, width = padded.shape
    thetas = []
    for generator in generators:
        shift_x, shift_y, scale, angle = _draw(generator, jitter)
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        # output -> input in normalized coordinates: rotate and zoom about the center, then shift
        thetas.append(
            [[cos, -sin * height / width, 2 * shift_x / width], [sin * width / height, cos, 2 * shift_y / height]]
        )
    theta = torch.tensor(thetas, dtype=padded.dtype, device=padded.device)  # (B, 2, 3)
    grid = F.affine_grid(theta, [batch, 3, height, width], align_corners=False)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)
