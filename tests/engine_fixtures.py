"""Fixtures for engine tests: planted VGG16 weights (testkit.planted_weights) and the cat photo."""

from pathlib import Path

import pytest
import torch

from testkit.planted_weights import plant_vgg16_weights

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def planted_vgg16(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """(TORCH_HOME holding planted VGG16 weights, the planted state dict)."""
    torch_home = tmp_path_factory.mktemp("torch_home")
    return torch_home, plant_vgg16_weights(torch_home)


@pytest.fixture
def vgg16_home(planted_vgg16: tuple[Path, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch) -> Path:
    """TORCH_HOME set to the planted weights for the duration of one test."""
    torch_home, _ = planted_vgg16
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return torch_home


@pytest.fixture(scope="session")
def cat_jpeg() -> bytes:
    return (DATA / "cat.jpg").read_bytes()
