"""Estimate the natural-image magnitude spectrum that ``method="maco"`` keeps fixed, and ship it.

    python -m bench.make_maco_spectrum      # writes core/engine/data/maco_spectrum.npy

How: scikit-image's natural color photos (astronaut, chelsea, coffee, rocket, the left motorcycle
view; its microscopy, astronomy and synthetic images are left out), each cut into square crops
(the whole short side, and halves of it on a half-overlapping grid), every crop resized to
SPECTRUM_SIDE with antialiasing, mapped into the engine's own color space (0..255 -> logit ->
decorrelated color, core.engine.parameterizations.decorrelated_logits: the space the phase is
optimized in), its orthonormal rfft2 magnitude taken per channel, and the magnitudes averaged over
all crops, smoothed by a 3x3 mean (the average of a few dozen crops is still speckled at high
frequencies), fftshifted along H and stored as float16: 3 x 128 x 65, about 50 KB.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data

from core.engine.parameterizations import MACO_SPECTRUM, decorrelated_logits

SPECTRUM_SIDE = 128
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")
OUT = Path(__file__).resolve().parents[1] / "core" / "engine" / "data" / MACO_SPECTRUM


def photo(name: str) -> torch.Tensor:
    """(3, H, W) float pixels 0..255 of one scikit-image photo."""
    image = getattr(data, name)()
    image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()


def square_crops(pixels: torch.Tensor) -> list[torch.Tensor]:
    """The photo's central square, and half-side squares on a half-overlapping grid."""
    _, height, width = pixels.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crops = [pixels[:, top : top + side, left : left + side]]
    half = side // 2
    for y in range(0, height - half + 1, half // 2):
        for x in range(0, width - half + 1, half // 2):
            crops.append(pixels[:, y : y + half, x : x + half])
    return crops


def magnitude_spectrum() -> np.ndarray:
    """(3, SPECTRUM_SIDE, SPECTRUM_SIDE // 2 + 1) mean magnitude, fftshifted along H, float16."""
    crops = [crop for name in PHOTOS for crop in square_crops(photo(name))]
    resized = torch.cat(
        [F.interpolate(c[None], size=(SPECTRUM_SIDE,) * 2, mode="bilinear", antialias=True) for c in crops]
    )
    spectra = torch.fft.rfft2(decorrelated_logits(resized.clamp(0, 255)), norm="ortho").abs()  # (N, 3, h, w)
    mean = torch.fft.fftshift(spectra.mean(dim=0), dim=1)  # (3, h, w), H from -1/2 to 1/2 cycles per pixel
    smooth = F.avg_pool2d(F.pad(mean[None], [1, 1, 1, 1], mode="replicate"), 3, stride=1)[0]
    center = SPECTRUM_SIDE // 2
    smooth[:, center, 0] = smooth[:, center + 1, 0]  # the DC (the photos' mean) is not kept: see natural_magnitude
    print(f"{len(crops)} crops of {len(PHOTOS)} photos")
    return smooth.numpy().astype(np.float16)


def main() -> None:
    spectrum = magnitude_spectrum()
    np.save(OUT, spectrum)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes, shape {spectrum.shape})")


if __name__ == "__main__":
    main()
