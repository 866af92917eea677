"""A Lucid-style reference renderer, written the way lucent's ``render_vis`` works.

The standard recipe of Distill's "Feature Visualization": an FFT parameterization with 1/f
decay (sd 0.01), decorrelated color through a sigmoid, Lucid's ``standard_transforms`` drawn
from numpy's global RNG as lucent does, Adam at 0.05 for 512 steps. Kept apart from the
engine on purpose: it is the yardstick, so it shares none of the engine's optimization code.
"""

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from core.engine.features import FeatureExtractor, select_channels
from core.engine.objectives import Activations, channel

_COLOR_SVD_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype="float32")
_COLOR_NORMALIZED = torch.tensor(_COLOR_SVD_SQRT / np.max(np.linalg.norm(_COLOR_SVD_SQRT, axis=0)))

Transform = Callable[[torch.Tensor], torch.Tensor]


def fft_image(
    batch: int, height: int, width: int, sd: float = 0.01, decay_power: float = 1.0
) -> tuple[list[torch.Tensor], Callable[[], torch.Tensor]]:
    """Returns (parameters, image_fn): image_fn() is (batch, 3, H, W) in 0..1."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[: width // 2 + 1]
    freqs = np.sqrt(fx * fx + fy * fy)
    scale = torch.tensor(1.0 / np.maximum(freqs, 1.0 / max(width, height)) ** decay_power).float()
    spectrum = (torch.randn(batch, 3, *freqs.shape, 2) * sd).requires_grad_(True)

    def image_fn() -> torch.Tensor:
        scaled = torch.view_as_complex(scale[None, None, ..., None] * spectrum)
        image = torch.fft.irfftn(scaled, s=(height, width), norm="ortho") / 4.0
        flat = image.permute(0, 2, 3, 1) @ _COLOR_NORMALIZED.T
        return torch.sigmoid(flat.permute(0, 3, 1, 2))

    return [spectrum], image_fn


def _jitter(d: int) -> Transform:
    def inner(x: torch.Tensor) -> torch.Tensor:
        dx, dy = np.random.choice(d), np.random.choice(d)
        return torch.roll(x, shifts=(int(dy), int(dx)), dims=(2, 3))

    return inner


def _pad(w: int, value: float = 0.5) -> Transform:
    return lambda x: F.pad(x, [w] * 4, mode="constant", value=value)


def _random_scale(scales: list[float]) -> Transform:
    def inner(x: torch.Tensor) -> torch.Tensor:
        scale = np.random.choice(scales)
        size = [int(np.ceil(scale * d)) for d in x.shape[2:]]
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)

    return inner


def _random_rotate(angles: list[int]) -> Transform:
    def inner(x: torch.Tensor) -> torch.Tensor:
        radians = np.deg2rad(np.random.choice(angles))
        cos, sin = float(np.cos(radians)), float(np.sin(radians))
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]]).expand(len(x), 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)

    return inner


STANDARD_TRANSFORMS = [
    _pad(12),
    _jitter(8),
    _random_scale([1 + (i - 5) / 50.0 for i in range(11)]),
    _random_rotate(list(range(-10, 11)) + 5 * [0]),
    _jitter(4),
]


def lucid_render(
    features: FeatureExtractor,
    relu: bool,
    filters: list[int],
    size: int,
    steps: int = 512,
    learning_rate: float = 0.05,
    on_step: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """One picture per filter, batched; returns (B, H, W, 3) uint8. ``on_step(steps done)`` after each step
    (a benchmark's clock: what the same render would have taken with fewer steps)."""
    params, image_fn = fft_image(len(filters), size, size)
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    targets = torch.tensor(filters)
    for step in range(steps):
        optimizer.zero_grad()
        x = image_fn()
        for transform in STANDARD_TRANSFORMS:
            x = transform(x)
        (output,) = features(x * 255)
        output = F.relu(output) if relu else output
        loss = -channel()(Activations(select_channels(output, targets))).sum()
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step + 1)
    with torch.no_grad():
        return (image_fn() * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
