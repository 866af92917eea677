"""Transparency maps: where a picture's gradients were, as the alpha channel of its PNG.

MACO's attribution (Fel et al. 2023): the magnitude of the objective's gradient with respect to
the picture's pixels, accumulated over every step of the optimization, marks the parts of the
picture that the filter's response depends on. Raw, it is speckled (neighboring pixels take turns)
and heavy-tailed (a few pixels carry much of it), so each picture's map is normalized on its own:
summed over the color channels, blurred with a Gaussian of ``BLUR_FRACTION`` of the short side,
then divided by its ``HIGH``-quantile and clipped at 1: zero gradient is transparent, the top 1 %
opaque, and the rest in proportion (a low quantile subtracted as well left most of a picture whose
filter reads it everywhere almost invisible).
"""

import torch
import torch.nn.functional as F

BLUR_FRACTION = 1 / 48
HIGH = 0.99


def _gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, H, W) -> (B, H, W), separable Gaussian, edges replicated."""
    radius = max(1, round(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.pad(maps[:, None], [radius] * 4, mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x[:, 0]


def transparency_alpha(accumulated: torch.Tensor) -> torch.Tensor:
    """(B, H, W) accumulated gradient magnitude -> (B, H, W) uint8 alpha, each picture normalized alone."""
    height, width = accumulated.shape[-2:]
    maps = _gaussian_blur(accumulated.detach().float(), max(0.5, min(height, width) * BLUR_FRACTION))
    high = maps.reshape(len(maps), -1).quantile(HIGH, dim=1)[:, None, None]
    unit = (maps / high.clamp(min=1e-12)).clamp(0, 1)
    return (unit * 255).round().to(torch.uint8).cpu()
