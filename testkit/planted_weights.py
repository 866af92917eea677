"""Planted VGG16 weights: a seeded random state dict where torchvision's cache looks for the real one.

Timings depend on arithmetic, not on weight values, and the tests need no download: both plant
these when the real ImageNet weights are not on the machine.
"""

import os
import tempfile
from pathlib import Path

import torch

VGG16_FILE = "vgg16-397923af.pth"  # torchvision's file name for VGG16_Weights.IMAGENET1K_V1


def plant_vgg16_weights(torch_home: Path, seed: int = 1234) -> dict[str, torch.Tensor]:
    """Write a seeded random VGG16 state dict under ``torch_home``; returns it."""
    import torchvision

    torch.manual_seed(seed)
    state = torchvision.models.vgg16(weights=None).state_dict()
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.save(state, checkpoints / VGG16_FILE)
    return state


def plant_vgg16_weights_if_missing() -> bool:
    """Without the real VGG16 weights, point TORCH_HOME at a fresh temporary directory holding
    planted ones (for this process and its children). True when it planted them."""
    from core.engine import weights_available  # here: importing the fixtures loads no engine

    if weights_available("vgg16"):
        return False
    os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="filterviz-bench-")
    plant_vgg16_weights(Path(os.environ["TORCH_HOME"]))
    return True


# --- a deployment's own models (FILTERVIZ_MODELS_FILE): planted seeded weights, good and bad files ---

VIT_IMG_SIZE = 64  # vit_tiny_patch16_224's widths and depth, on a 4x4 patch grid: fast on a CPU
MODELS_TOML = """\
[models.my_resnet]
architecture = "torchvision:resnet18"
weights = "my_resnet.safetensors"
num_classes = 10
mean = [123.7, 116.3, 103.5]
std = [58.4, 57.1, 57.4]
default_size = 64
description = "ResNet-18 with 10 classes (planted seeded weights)"

[models.my_vit]
architecture = "timm:vit_tiny_patch16_224"
weights = "my_vit.safetensors"
num_classes = 10
preset = "imagenet"
default_size = 64
options = {{ img_size = {vit_img_size} }}
aliases = {{ stem = "patch_embed.proj" }}
description = "ViT-Tiny/16 at 64 px (planted seeded weights)"

[models.wrong_architecture]
architecture = "torchvision:resnet34"
weights = "my_resnet.safetensors"
num_classes = 10
preset = "imagenet"

[models.truncated]
architecture = "torchvision:resnet18"
weights = "truncated.safetensors"
num_classes = 10
preset = "imagenet"

[models.pickle_payload]
architecture = "torchvision:resnet18"
weights = "payload.pth"
num_classes = 10
preset = "imagenet"

[models.unknown_architecture]
architecture = "torchvision:resnet9000"
weights = "my_resnet.safetensors"
preset = "imagenet"
"""
GOOD_MODELS = ("my_resnet", "my_vit")
BAD_MODELS = ("wrong_architecture", "truncated", "pickle_payload", "unknown_architecture")


class Payload:
    """Unpickled by an unsafe loader, this would create ``marker``: the proof that a loader ran it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def plant_models_file(directory: Path, seed: int = 1234) -> Path:
    """A models file with two good entries (resnet18, 10 classes; a 64-px ViT-Tiny, 10 classes) and one bad
    entry of each kind, beside their weight files; returns its path. The payload's marker is
    ``directory / "payload-ran"``: it must never exist."""
    import timm
    import torchvision
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    resnet = torchvision.models.resnet18(weights=None, num_classes=10).state_dict()
    save_file(resnet, directory / "my_resnet.safetensors")
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, img_size=VIT_IMG_SIZE)
    save_file({key: tensor.contiguous() for key, tensor in vit.state_dict().items()}, directory / "my_vit.safetensors")
    whole = (directory / "my_resnet.safetensors").read_bytes()
    (directory / "truncated.safetensors").write_bytes(whole[: len(whole) // 2])
    torch.save({**resnet, "fc.bias": Payload(directory / "payload-ran")}, directory / "payload.pth")
    path = directory / "models.toml"
    path.write_text(MODELS_TOML.format(vit_img_size=VIT_IMG_SIZE))
    return path


def plant_missing_weights(models: list[str], weights_dir: Path, seed: int = 1234) -> list[str]:
    """Seeded random weights, under ``weights_dir`` by each model's own file name, for every model of ``models``
    whose weights are not found there or in torchvision's cache; returns the models planted. For checks of
    arithmetic only (a GPU run: does every model load and render), never of pictures."""
    from core.engine import model_info, weights_available
    from core.engine.models import build_architecture

    planted = []
    for name in models:
        if weights_available(name) or weights_available(name, weights_dir):
            continue
        torch.manual_seed(seed)
        weights_dir.mkdir(parents=True, exist_ok=True)
        torch.save(build_architecture(name).state_dict(), weights_dir / model_info(name).weights_file)
        planted.append(name)
    return planted
