"""Fixtures for engine tests: planted VGG16 weights, a planted models file (testkit.planted_weights), the cat photo."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from testkit.planted_weights import plant_models_file, plant_vgg16_weights

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


@pytest.fixture(scope="session")
def planted_models_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models file with good and bad entries beside their planted weight files (testkit.planted_weights)."""
    return plant_models_file(tmp_path_factory.mktemp("own_models"))


@pytest.fixture
def own_models(planted_models_file: Path) -> Iterator[Path]:
    """This process's engine serving the planted models file for one test; the built-ins alone again after."""
    from core.engine import models  # here: importing the fixtures loads no engine

    models.use_models_file(planted_models_file)
    yield planted_models_file
    models.use_models_file(None)
