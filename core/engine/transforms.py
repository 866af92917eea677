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


@dataclass(frozen=True)
class Crops:
    """MACO's views (Fel et al. 2023): random square crops, each resized back to the picture's size,
    plus Gaussian and uniform pixel noise. MACO crops 20-25 % of a 1280 px picture for a 224 px model;
    a picture here is about the model's input size, so its crops are larger."""

    fraction: tuple[float, float] = (0.5, 1.0)  # crop side over the picture's
    center_std: float = 0.15  # of the crop center around the picture's, in half-sides
    noise: float = 2.5  # pixels: std of the Gaussian noise and half-range of the uniform one


MACO_CROPS = Crops()


def random_crops(pixels: torch.Tensor, generators: list[torch.Generator], crops: Crops = MACO_CROPS) -> torch.Tensor:
    """(B, C, H, W) pixels -> (B, C, H, W): each row a random crop of itself, zoomed to the whole size, noised."""
    thetas = []
    noises = []
    batch, channels, height, width = pixels.shape
    for generator in generators:
        u = torch.rand(3, generator=generator).tolist()
        center = (torch.randn(2, generator=generator) * crops.center_std).tolist()
        side = crops.fraction[0] + u[0] * (crops.fraction[1] - crops.fraction[0])
        room = 1 - side  # the crop stays inside the picture
        cx, cy = (max(-room, min(room, c)) for c in center)
        thetas.append([[side, 0.0, cx], [0.0, side, cy]])
        gaussian = torch.randn((channels, height, width), generator=generator)
        uniform = torch.rand((channels, height, width), generator=generator) * 2 - 1
        noises.append((gaussian + uniform) * crops.noise)
    theta = torch.tensor(thetas, dtype=pixels.dtype, device=pixels.device)  # (B, 2, 3)
    grid = F.affine_grid(theta, [batch, channels, height, width], align_corners=False)
    cropped = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return cropped + torch.stack(noises).to(pixels.device, pixels.dtype)


# Accentuation's transforms are mild: the picture must stay the photo, in its place.
MILD = Jitter(pad=4, shift=4, scale=(0.95, 1.05), degrees=5.0)
