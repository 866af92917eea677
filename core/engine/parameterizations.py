"""Image parameterizations: what the optimizer actually changes, and where it starts.

The classic method changes the pixels themselves, each row starting from ``row_start``: its own
noise, or the photo. ``FourierImage`` is the Distill/Lucid parameterization of the robust method:
a spectrum scaled by 1/f (so low frequencies move first and noise stays out) in a decorrelated
color space, squashed into 0..255 by a sigmoid. ``PhaseImage`` keeps a spectrum's magnitude fixed
and changes only its phase (MACO, Fel et al. 2023; faccent, Hamblin et al. 2024): the magnitude of
natural images (``natural_magnitude``, maco) or of the start photo itself (accentuate). All stand
for (B, 3, H, W) pixels in 0..255.
"""

import math
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
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


def decorrelated_logits(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) pixels in 0..255 -> the decorrelated signal whose ``_to_pixels`` gives them back."""
    unit = (pixels / 255).clamp(_EPS, 1 - _EPS)
    decorrelated = torch.logit(unit).permute(0, 2, 3, 1) @ torch.linalg.inv(COLOR_MIX.to(pixels.device).T)
    return decorrelated.permute(0, 3, 1, 2)


def _to_pixels(signal: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) decorrelated signal -> (B, 3, H, W) pixels in 0..255: recorrelate colors, sigmoid."""
    rgb = signal.permute(0, 2, 3, 1) @ mix.T  # (B, H, W, 3)
    return torch.sigmoid(rgb.permute(0, 3, 1, 2)) * 255


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
        signal = decorrelated_logits(pixels) * _SPECTRUM_GAIN
        spectrum = torch.view_as_real(torch.fft.rfft2(signal, norm="ortho"))
        return cls(spectrum / _frequency_scale(*size, pixels.device)[None, None, :, :, None], size)

    @property
    def parameter(self) -> nn.Parameter:
        return self.spectrum

    def rows(self, rows: torch.Tensor) -> "FourierImage":
        """A new image of just these batch rows."""
        return FourierImage(self.spectrum.detach()[rows], self.size)

    def forward(self) -> torch.Tensor:  # -> (B, 3, H, W) pixels in 0..255
        spectrum = torch.view_as_complex((self.spectrum * self.scale).contiguous())
        signal = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / _SPECTRUM_GAIN  # (B, 3, H, W)
        return _to_pixels(signal, self.mix)


# The magnitude spectrum of natural images, made by bench/make_maco_spectrum.py (see there how):
# (3, SPECTRUM_SIDE, SPECTRUM_SIDE // 2 + 1) float16, decorrelated logit color, fftshifted along H.
MACO_SPECTRUM = "maco_spectrum.npy"


def _shipped_spectrum() -> torch.Tensor:
    with resources.files("core.engine.data").joinpath(MACO_SPECTRUM).open("rb") as file:
        return torch.from_numpy(np.load(file).astype(np.float32))


def natural_magnitude(size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(3, H, W//2+1) the shipped natural-image magnitude at ``size``, resized by bilinear interpolation.

    The file holds the orthonormal FFT's magnitudes per frequency in cycles per pixel, which do not
    depend on the image's size, so only the grid is resampled: along H in fftshifted (monotonic)
    order, so the interpolation never wraps from the highest positive to the lowest negative
    frequency. The DC term is zero: the picture's mean color is left to the phases of the lowest
    frequencies (a fixed DC would fix the mean at the photos' average, and its scale grows with the size).
    """
    height, width = size
    shipped = _shipped_spectrum()[None]  # (1, 3, h, w//2+1)
    resized = F.interpolate(shipped, size=(height, width // 2 + 1), mode="bilinear", align_corners=True)[0]
    magnitude = torch.fft.ifftshift(resized, dim=1).clone()
    magnitude[:, 0, 0] = 0
    return magnitude.to(device)


class PhaseImage(nn.Module):
    """A batch of images as fixed decorrelated-color magnitude spectra and an optimized phase."""

    magnitude: torch.Tensor
    mix: torch.Tensor

    def __init__(self, magnitude: torch.Tensor, phase: torch.Tensor, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("magnitude", magnitude)  # (B or 1, 3, H, W//2+1)
        self.phase = nn.Parameter(phase)  # (B, 3, H, W//2+1) radians
        self.register_buffer("mix", COLOR_MIX.to(phase.device))

    @classmethod
    def from_pixels(cls, pixels: torch.Tensor) -> "PhaseImage":
        """The photo's own magnitude and phase (faccent's start): forward() gives back ``pixels``."""
        spectrum = torch.fft.rfft2(decorrelated_logits(pixels), norm="ortho")
        return cls(spectrum.abs(), spectrum.angle(), tuple(pixels.shape[-2:]))  # type: ignore[arg-type]

    @classmethod
    def from_natural(cls, generators: list[torch.Generator], size: tuple[int, int]) -> "PhaseImage":
        """MACO's start: the natural magnitude, and a uniformly random phase per row."""
        shape = (3, size[0], size[1] // 2 + 1)
        phase = torch.stack([(torch.rand(shape, generator=g) * 2 - 1) * math.pi for g in generators])
        return cls(natural_magnitude(size, torch.device("cpu"))[None], phase, size)

    @property
    def parameter(self) -> nn.Parameter:
        return self.phase

    def rows(self, rows: torch.Tensor) -> "PhaseImage":
        """A new image of just these batch rows."""
        magnitude = self.magnitude if len(self.magnitude) == 1 else self.magnitude[rows]
        return PhaseImage(magnitude, self.phase.detach()[rows], self.size)

    def signal(self) -> torch.Tensor:
        """(B, 3, H, W) the decorrelated signal before color and sigmoid: its spectrum's magnitude is fixed."""
        spectrum = torch.polar(self.magnitude.expand_as(self.phase), self.phase)
        return torch.fft.irfft2(spectrum, s=self.size, norm="ortho")

    def forward(self) -> torch.Tensor:  # -> (B, 3, H, W) pixels in 0..255
        return _to_pixels(self.signal(), self.mix)
