"""Fixtures for engine tests: planted VGG16 weights, the real EfficientNet-Lite0, a small spec."""

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"
VGG16_FILE = "vgg16-397923af.pth"  # torchvision's file name for VGG16_Weights.IMAGENET1K_V1


def plant_vgg16_weights(torch_home: Path, seed: int = 1234) -> dict[str, torch.Tensor]:
    """Write a seeded random VGG16 state dict where torchvision's cache looks for the real one."""
    import torchvision

    torch.manual_seed(seed)
    state = torchvision.models.vgg16(weights=None).state_dict()
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.save(state, checkpoints / VGG16_FILE)
    return state


@pytest.fixture(scope="session")
def planted_vgg16(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """(TORCH_HOME holding planted VGG16 weights, the planted state dict)."""
    torch_home = tmp_path_factory.mktemp("torch_home")
    return torch_home, plant_vgg16_weights(torch_home)


@pytest.fixture
def vgg16_home(planted_vgg16, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TORCH_HOME set to the planted weights for the duration of one test."""
    torch_home, _ = planted_vgg16
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return torch_home


@pytest.fixture(scope="session")
def cat_jpeg() -> bytes:
    return (DATA / "cat.jpg").read_bytes()
