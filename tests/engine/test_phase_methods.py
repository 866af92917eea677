"""maco, accentuate and transparency maps: what each keeps fixed, and what it climbs."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from core.cache_key import picture_keys
from core.engine import render
from core.engine.attribution import transparency_alpha
from core.engine.codec import image_to_pixels
from core.engine.optimizers import AccentuateAscent, RobustAscent
from core.engine.parameterizations import PhaseImage, natural_magnitude
from core.engine.transforms import MILD
from core.images import open_image
from core.job_cost import METHOD_PAD, METHOD_VIEWS
from core.spec import RenderSpec

LITE0 = {"model": "efficientnet_lite0", "layer": "blocks.3", "size": 64}
PHOTO = {"type": "image", "image_id": "0" * 32}


def rgba_of(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGBA"
    return np.asarray(image)


def test_maco_changes_only_the_phase_of_the_shipped_magnitude():
    size = (48, 64)
    image = PhaseImage.from_natural([torch.Generator().manual_seed(i) for i in range(2)], size)
    optimizer = torch.optim.Adam(image.parameters(), lr=0.2)
    for _ in range(5):  # any objective: here, a redder picture
        optimizer.zero_grad()
        (-image()[:, 0].mean()).backward()
        optimizer.step()
    magnitude = torch.fft.rfft2(image.signal().detach(), norm="ortho").abs()
    shipped = natural_magnitude(size, torch.device("cpu")).expand_as(magnitude)
    # columns 0 and W/2 hold self-conjugate frequencies, whose phase a real picture cannot choose freely
    inner = (slice(None), slice(None), slice(None), slice(1, -1))
    assert torch.allclose(magnitude[inner], shipped[inner], rtol=1e-3, atol=1e-4)
    assert not torch.allclose(image.phase, PhaseImage.from_natural([torch.Generator().manual_seed(0)], size).phase)


def test_the_shipped_magnitude_falls_off_like_a_natural_image():
    magnitude = natural_magnitude((128, 128), torch.device("cpu"))[0]  # luminance-like channel
    low, high = magnitude[1:4, 1:4].mean(), magnitude[56:64, 56:64].mean()
    assert low > 20 * high  # roughly 1/f: natural images are smooth, noise is flat


def test_maco_raises_each_filter_from_noise():
    result = render(RenderSpec(filters="0-1", method="maco", steps=16, **LITE0), device="cpu")
    for item in result.pictures:
        assert item.activation > item.start_activation + 1.0, item


@pytest.fixture(scope="module")
def cat(cat_jpeg):
    return open_image(cat_jpeg, 10**8)


def test_accentuate_raises_the_filter_and_keeps_the_photo(cat):
    size = (64, 96)  # the cat's aspect ratio
    spec = RenderSpec(**{**LITE0, "size": size}, filters="0", method="accentuate", steps=24, init=PHOTO)
    (picture,) = render(spec, init_image=cat, device="cpu").pictures
    assert picture.activation > picture.start_activation + 1.0
    photo = image_to_pixels(cat, size).permute(1, 2, 0).round().numpy().astype(np.uint8)
    shown = np.asarray(Image.open(io.BytesIO(picture.png)).convert("RGB"))
    assert structural_similarity(photo, shown, channel_axis=2) > SSIM_BOUND


SSIM_BOUND = 0.5


def test_a_transparency_map_marks_where_the_gradients_were():
    """The neuron objective reads the center of the feature map: its gradients, hence the alpha, are
    concentrated there, far from the picture's edges."""
    spec = RenderSpec(filters="0-1", method="robust", objective="neuron", steps=8, transparency=True, **LITE0)
    for item in render(spec, device="cpu").pictures:
        alpha = rgba_of(item.png)[..., 3].astype(float)
        assert alpha.std() > 20
        center, border = alpha[24:40, 24:40].mean(), np.concatenate([alpha[:8].ravel(), alpha[-8:].ravel()]).mean()
        assert center > border + 60, (center, border)


def test_transparency_alpha_is_normalized_per_picture():
    maps = torch.zeros(2, 32, 32)
    maps[0, 8:16, 8:16] = 1.0
    maps[1, 20:28, 4:12] = 1000.0  # another scale: the same alpha
    alpha = transparency_alpha(maps)
    assert alpha.dtype == torch.uint8 and alpha[0, 12, 12] == 255 and alpha[0, 28, 28] == 0
    assert torch.equal(alpha[0, 8:16, 8:16], alpha[1, 20:28, 4:12])


def test_without_transparency_the_pictures_stay_rgb():
    (item,) = render(RenderSpec(filters="0", method="maco", steps=2, **LITE0), device="cpu").pictures
    assert Image.open(io.BytesIO(item.png)).mode == "RGB"


def test_transparency_is_in_the_cache_key_only_when_asked():
    plain = RenderSpec(filters="0", method="robust", **LITE0)
    keys = picture_keys(plain, "blocks.3", "w")
    assert picture_keys(plain.model_copy(update={"transparency": True}), "blocks.3", "w") != keys
    assert picture_keys(RenderSpec(filters="0", method="robust", transparency=False, **LITE0), "blocks.3", "w") == keys


def test_the_cost_model_knows_the_new_methods_views():
    assert METHOD_VIEWS["maco"] == RobustAscent.VIEWS and METHOD_PAD["maco"] == 0
    assert METHOD_VIEWS["accentuate"] == 2 * AccentuateAscent.VIEWS and METHOD_PAD["accentuate"] == MILD.pad
