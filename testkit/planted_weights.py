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
