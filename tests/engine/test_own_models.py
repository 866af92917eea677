"""A deployment's own models in the engine: weights checked against the architecture, a ViT's tokens as grids."""

from pathlib import Path

import pytest
import torch

from core.engine import list_layers, load_model, models, resolve_layer
from core.engine.features import FeatureExtractor
from core.errors import ModelUnavailable, WeightsUnavailable
from testkit.planted_weights import GOOD_MODELS


def test_good_entries_load_their_planted_weights(own_models: Path) -> None:
    from safetensors.torch import load_file

    for name in GOOD_MODELS:
        models.check_model(name)
    planted = load_file(own_models.parent / "my_resnet.safetensors")
    network = load_model("my_resnet")[1]
    assert torch.equal(network.fc.weight, planted["fc.weight"]) and network.fc.out_features == 10
    assert models.model_info("my_resnet").num_classes == 10


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (
            "wrong_architecture",
            "not a state dict of torchvision:resnet34 with 10 classes: missing layer1.2.conv1.weight",
        ),
        ("truncated", "truncated.safetensors cannot be read"),
        ("pickle_payload", "the pickle names io.open, and filterviz loads tensors only"),
    ],
)
def test_a_bad_weight_file_is_refused_before_any_weight_is_used(own_models: Path, name: str, reason: str) -> None:
    with pytest.raises(WeightsUnavailable, match=reason):
        models.check_model(name)
    with pytest.raises(WeightsUnavailable, match=reason):
        load_model(name)  # never a network with random weights
    assert not (own_models.parent / "payload-ran").exists()


def test_an_unknown_architecture_suggests_close_names(own_models: Path) -> None:
    with pytest.raises(ModelUnavailable, match="no classifier 'resnet9000'; close: resnet50, resnet101"):
        models.check_model("unknown_architecture")


def test_shape_mismatches_name_the_first_few(own_models: Path, tmp_path: Path) -> None:
    entry = models.model_config("my_resnet").model_copy(update={"num_classes": 1000})
    (tmp_path / "models.toml").write_text(
        "[models.thousand]\n"
        f'architecture = "torchvision:resnet18"\nweights = "{own_models.parent / "my_resnet.safetensors"}"\n'
        f"mean = {list(entry.mean)}\nstd = {list(entry.std)}\n"
    )
    models.use_models_file(tmp_path / "models.toml")
    with pytest.raises(
        WeightsUnavailable,
        match=r"shapes differ: fc.bias \[10\] \(the architecture's: \[1000\]\), fc.weight \[10, 512\]",
    ):
        models.check_model("thousand")


def test_a_pth_state_dict_loads_as_safetensors_do(tmp_path: Path, own_models: Path) -> None:
    from safetensors.torch import load_file

    torch.save(load_file(own_models.parent / "my_resnet.safetensors"), tmp_path / "same.pth")
    (tmp_path / "models.toml").write_text(
        (own_models.read_text().split("[models.my_vit]")[0]).replace(
            "my_resnet.safetensors", str(tmp_path / "same.pth")
        )
    )
    models.use_models_file(tmp_path / "models.toml")
    models.check_model("my_resnet")
    assert torch.equal(
        load_model("my_resnet")[1].conv1.weight, load_file(own_models.parent / "my_resnet.safetensors")["conv1.weight"]
    )


def test_a_vits_blocks_are_patch_grids_without_the_class_token(own_models: Path) -> None:
    layers = {layer.name: layer for layer in list_layers("my_vit", 64)}
    assert list(layers)[:3] == ["patch_embed.proj", "blocks.0.mlp.act", "blocks.0"] and len(layers) == 25
    assert layers["blocks.0.mlp.act"].output_shape == (768, 4, 4) and layers["blocks.11"].output_shape == (192, 4, 4)
    assert resolve_layer("my_vit", "block5_mlp").module_path == "blocks.5.mlp.act"
    assert resolve_layer("my_vit", "stem").name == "patch_embed.proj"  # the entry's own alias

    model = load_model("my_vit")
    pixels = torch.rand(2, 3, 80, 48) * 255  # not square, not the entry's size: a 5 x 3 patch grid
    tokens: list[torch.Tensor] = []
    handle = model[1].blocks[5].register_forward_hook(lambda _m, _i, output: tokens.append(output))
    with torch.no_grad():
        (grid,) = FeatureExtractor(model, ["blocks.5"])(pixels)
    handle.remove()
    assert grid.shape == (2, 192, 5, 3) and tokens[0].shape == (2, 1 + 15, 192)
    assert torch.equal(grid[:, :, 1, 2], tokens[0][:, 1 + 1 * 3 + 2])  # the patch at row 1, column 2


def test_resnet_stages_answer_to_their_well_known_names(own_models: Path) -> None:
    assert resolve_layer("my_resnet", "res4").name == "layer3"
    assert resolve_layer("vgg16", "features.17").name == "block4_conv1"  # the built-ins keep theirs
