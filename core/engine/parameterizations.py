"""Image parameterizations: what the optimizer actually changes, and where it starts.

The classic method changes the pixels themselves, each row starting from ``row_start``: its own
noise, or the photo. ``FourierImage`` is the Distill/Lucid parameterization of the robust method:
a spectrum scaled by 1/f (so low frequencies move first and noise stays out) in a decorrelated
color space, squashed into 0..255 by a sigmoid. Both stand for (B, 3, H, W) pixels in 0..255.
"""

import torch
from PIL import Image
from torch import nn

from core.engine.batch_plan import row_seed
from core.engine.codec import image_to_pixels
from core.errors import InvalidImage
from core.spec import ImageInit, RenderSpec

# Square root of ImageNet's color covariance (Lucid's ``color_correlation_svd_sqrt``), its
# columns scaled so the largest has unit norm: decorrelated channels -> RGB.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_MIX = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()
_SPECTRUM_GAIN = 4.0  # brings the inverse FFT's output to roughly unit scale before the sigmoid
_EPS = 1e-3  # keeps start pixels off the sigmoid's flat ends when encoding a photo


def photo_pixels(spec: RenderSpec, init_image: Image.Image | None) -> torch.Tensor | None:
    """(3, H, W) start pixels of a request that starts from an image; None for noise."""
    if not isinstance(spec.init, ImageInit):
        return None
    if init_image is None:
        raise InvalidImage(f"the request starts from image {spec.init.image_id}, but it was not given")
    return image_to_pixels(init_image, spec.size)


def row_start(spec: RenderSpec, filter_index: int, variant: int, photo: torch.Tensor | None) -> torch.Tensor:
    """(3, H, W) float32 classic start pixels of one row, on the CPU: the photo, or the row's own noise."""
    if photo is not None:
        return photo
    assert not isinstance(spec.init, ImageInit), "a request that starts from a photo has its pixels"
    generator = torch.Generator().manual_seed(row_seed(spec.seed, filter_index, variant))
    return torch.randn((3, *spec.size), generator=generator) * spec.init.std + spec.init.mean


def _frequency_scale(height: int, width: int, device: torch.device) -> torch.Tensor:
    """(H, W//2+1) factor 1/f, with f clipped below at 1/max(H, W) so the DC term stays finite."""
    fy = torch.fft.fftfreq(height, device=device)[:, None]
    fx = torch.fft.rfftfreq(width, device=device)[None, :]
    frequency = torch.sqrt(fx * fx + fy * fy)
    return 1.0 / frequency.clamp(min=1.0 / max(height, width))


class FourierImage(nn.Module):
    """A batch of images as decorrelated-color 1/f-scaled spectra."""

    scale: torch.Tensor
    mix: torch.Tensor

    def __init__(self, spectrum: torch.Tensor, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size
        self.spectrum = nn.Parameter(spectrum)  # (B, 3, H, W//2+1, 2) real and imaginary parts
        self.register_buffer("scale", _frequency_scale(*size, spectrum.device)[None, None, :, :, None])
        self.register_buffer("mix", COLOR_MIX.to(spectrum.device))

    @classmethod
    def from_noise(cls, generators: list[torch.Generator], size: tuple[int, int], std: float = 0.3) -> "FourierImage":
        """A random spectrum, one generator per row; wider than Lucid's 0.01: some contrast climbs faster."""
        shape = (3, size[0], size[1] // 2 + 1, 2)
        return cls(torch.stack([torch.randn(shape, generator=g) * std for g in generators]), size)

    @classmethod
    def from_pixels(cls, pixels: torch.Tensor) -> "FourierImage":
        """The exact parameters whose forward() gives back ``pixels`` (B, 3, H, W) in 0..255."""
        height, width = pixels.shape[-2:]
        size = (height, width)
        unit = (pixels / 255).clamp(_EPS, 1 - _EPS)
        decorrelated = torch.logit(unit).permute(0, 2, 3, 1) @ torch.linalg.inv(COLOR_MIX.T)
        signal = decorrelated.permute(0, 3, 1, 2) * _SPECTRUM_GAIN
        spectrum = torch.view_as_real(torch.fft.rfft2(signal, norm="ortho"))
        return cls(spectrum / _frequency_scale(*size, pixels.device)[None, None, :, :, None], size)

    def rows(self, rows: torch.Tensor) -> "FourierImage":
        """A new image of just these batch rows."""
        return FourierImage(self.spectrum.detach()[rows], self.size)

    def forward(self) -> torch.Tensor:  # -> (B, 3, H, W) pixels in 0..255
        spectrum = torch.view_as_complex((self.spectrum * self.scale).contiguous())
        signal = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / _SPECTRUM_GAIN  # (B, 3, H, W)
        rgb = signal.permute(0, 2, 3, 1) @ self.mix.T  # (B, H, W, 3)
        return torch.sigmoid(rgb.permute(0, 3, 1, 2)) * 255
