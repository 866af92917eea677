"""Model entries from a TOML file: their shape checked torch-free, the settings knowing their names."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.model_config import (
    BUILTIN_MODELS,
    IMAGENET_MEAN,
    ModelsFileError,
    TorchvisionWeights,
    WeightsFile,
    read_models_file,
)
from core.settings import Settings

ENTRY = """
[models.my_resnet]
architecture = "torchvision:resnet18"
weights = "weights/my_resnet.safetensors"
num_classes = 10
mean = [123.7, 116.3, 103.5]
std = [58.4, 57.1, 57.4]
default_size = 224
description = "ResNet-18 fine-tuned on our 10 classes"
"""


def models_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_the_issues_entry_reads_with_its_weights_beside_the_file(tmp_path: Path) -> None:
    (entry,) = read_models_file(models_file(tmp_path, ENTRY)).values()

    assert entry.architecture == "torchvision:resnet18" and entry.library == "torchvision"
    assert entry.builder == "resnet18" and entry.num_classes == 10 and entry.default_size == 224
    assert entry.weights == WeightsFile(path=tmp_path / "weights" / "my_resnet.safetensors")
    assert entry.mean == (123.7, 116.3, 103.5) and not entry.fetchable


def test_a_preset_stands_for_its_mean_and_std(tmp_path: Path) -> None:
    text = ENTRY.replace("mean = [123.7, 116.3, 103.5]\nstd = [58.4, 57.1, 57.4]", 'preset = "imagenet"')
    (entry,) = read_models_file(models_file(tmp_path, text)).values()
    assert entry.mean == IMAGENET_MEAN and entry.std[0] == pytest.approx(0.229 * 255)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("num_classes = 10", 'num_classes = 10\npreset = "imagenet"'), "give either preset or mean and std"),
        (("num_classes = 10", "num_classes = 10\noptions = { pretrained = true }"), "options may not set pretrained"),
        (('"torchvision:resnet18"', '"keras:resnet18"'), "models.my_resnet.architecture: String should match"),
        (("std = [58.4, 57.1, 57.4]", "std = [58.4, 0, 57.4]"), "models.my_resnet.std.1"),
        (("default_size = 224", "default_size = 224\ncolour = 3"), "models.my_resnet.colour: Extra inputs"),
        (("[models.my_resnet]", "[models.vgg16]"), "vgg16 is a built-in model's name"),
        (("[models.my_resnet]", '[models."my/resnet"]'), "models.my/resnet.[key]"),
        (("num_classes = 10", "num_classes = [10"), "is not TOML"),
    ],
)
def test_a_malformed_entry_names_its_file_and_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = models_file(tmp_path, ENTRY.replace(*change))
    with pytest.raises(ModelsFileError, match="models file") as error:
        read_models_file(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_the_built_ins_are_entries_of_the_same_kind() -> None:
    assert list(BUILTIN_MODELS) == ["vgg16", "vgg19", "alexnet", "resnet50", "googlenet", "efficientnet_lite0"]
    assert BUILTIN_MODELS["resnet50"].weights == TorchvisionWeights(torchvision="ResNet50_Weights.IMAGENET1K_V2")
    assert BUILTIN_MODELS["googlenet"].options == {"aux_logits": True, "transform_input": True, "init_weights": False}
    assert all(entry.fetchable for entry in BUILTIN_MODELS.values())
    fingerprints = {entry.fingerprint() for entry in BUILTIN_MODELS.values()}
    assert len(fingerprints) == len(BUILTIN_MODELS)


def test_the_settings_serve_every_known_model_unless_told_which(tmp_path: Path) -> None:
    path = models_file(tmp_path, ENTRY)
    assert Settings(models_file=path).models == [*BUILTIN_MODELS, "my_resnet"]
    assert Settings(models_file=path, models=["my_resnet"]).models == ["my_resnet"]  # the file's models only
    with pytest.raises(ValidationError, match="unknown model.s. my_resnet in FILTERVIZ_MODELS; known: vgg16"):
        Settings(models=["my_resnet"])
    with pytest.raises(ValidationError, match="FILTERVIZ_MODELS_FILE: cannot read models file"):
        Settings(models_file=tmp_path / "missing.toml")


def test_a_changed_entry_changes_its_fingerprint(tmp_path: Path) -> None:
    (entry,) = read_models_file(models_file(tmp_path, ENTRY)).values()
    (other,) = read_models_file(models_file(tmp_path, ENTRY.replace("123.7", "120.0"))).values()
    (same,) = read_models_file(models_file(tmp_path, ENTRY.replace("fine-tuned", "trained"))).values()
    assert entry.fingerprint() != other.fingerprint() and entry.fingerprint() == same.fingerprint()
