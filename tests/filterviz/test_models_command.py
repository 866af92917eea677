"""``filterviz models check FILE.toml``: what the catalog will show, and exit 2 with the reasons of bad entries."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from filterviz.cli import main


@pytest.fixture
def builtins_after() -> Iterator[None]:
    """The command points this process's engine at its file: the built-ins alone again after the test."""
    from core.engine import models

    yield
    models.use_models_file(None)


def test_good_entries_print_their_catalog_and_bad_ones_their_reasons(
    planted_models_file: Path, capsys: pytest.CaptureFixture[str], builtins_after: None
) -> None:
    assert main(["models", "check", str(planted_models_file)]) == 2
    out = capsys.readouterr().out

    assert "✓ my_resnet: torchvision:resnet18, 10 classes, 36 layers, weights my_resnet.safetensors" in out
    assert "✓ my_vit: timm:vit_tiny_patch16_224, 10 classes, 25 layers" in out
    assert "    patch_embed.proj (stem): Conv2d 192×4×4 at 64 px, 192 filters" in out
    assert "    layer4 (res5): Sequential 512×2×2 at 64 px, 512 filters" in out
    assert out.count("renders at 64x64: loaded and one step in") == 2
    assert "✗ wrong_architecture: unavailable: weights for wrong_architecture at" in out
    assert "not a state dict of torchvision:resnet34 with 10 classes: missing layer1.2.conv1.weight" in out
    assert "✗ truncated: unavailable:" in out and "✗ pickle_payload: unavailable:" in out
    assert "✗ unknown_architecture: unavailable: model unknown_architecture: torchvision" in out
    assert out.rstrip().endswith("2 of 6 models ok; 4 unavailable")
    assert not (planted_models_file.parent / "payload-ran").exists()


def test_a_file_of_good_entries_passes(
    planted_models_file: Path, capsys: pytest.CaptureFixture[str], builtins_after: None
) -> None:
    good = planted_models_file.with_name("good.toml")
    good.write_text(planted_models_file.read_text().split("[models.wrong_architecture]")[0])
    assert main(["models", "check", str(good)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("2 of 2 models ok")


def test_a_malformed_file_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[models.x]\narchitecture = "torchvision:resnet18"\nweights = "x.pth"\n')
    assert main(["models", "check", str(path)]) == 2
    assert f"filterviz: error: models file {path}: models.x.mean: Field required" in capsys.readouterr().err
