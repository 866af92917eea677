import pytest
import torch

from core.engine import list_models, load_model, weights_available
from core.engine.codec import image_to_pixels
from core.errors import UnknownModel, WeightsUnavailable
from core.images import open_image


def test_planted_vgg16_weights_load_through_torchvisions_cache(vgg16_home, planted_vgg16):
    _, planted = planted_vgg16
    assert weights_available("vgg16")
    model = load_model("vgg16")
    network = model[1]
    assert torch.equal(network.features[17].weight, planted["features.17.weight"])
    assert torch.equal(network.classifier[6].bias, planted["classifier.6.bias"])
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.training
    assert load_model("vgg16") is model  # cached per process


def test_missing_weights_name_the_file_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert not weights_available("vgg16")
    with pytest.raises(WeightsUnavailable) as error:
        load_model("vgg16")
    message = str(error.value)
    assert str(expected) in message
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in message
    assert "FILTERVIZ_WEIGHTS_DIR" in message


def test_a_weights_dir_setting_is_looked_in(tmp_path, planted_vgg16):
    torch_home, planted = planted_vgg16
    checkpoints = torch_home / "hub" / "checkpoints"
    assert weights_available("vgg16", checkpoints)
    assert not weights_available("vgg16", tmp_path)
    model = load_model("vgg16", checkpoints)
    assert torch.equal(model[1].features[0].weight, planted["features.0.weight"])


def test_efficientnet_lite0_with_its_real_weights_sees_a_cat(cat_jpeg):
    model = load_model("efficientnet_lite0")
    pixels = image_to_pixels(open_image(cat_jpeg, 10**8), (224, 224))[None]
    with torch.no_grad():
        top3 = model(pixels).topk(3).indices[0].tolist()
    assert top3[0] in {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert set(top3) <= {281, 282, 283, 284, 285, 287}  # all cats (lynx 287 allowed third)


def test_every_model_has_preprocessing_and_a_default_size():
    models = {info.name: info for info in list_models()}
    assert list(models) == ["vgg16", "vgg19", "alexnet", "resnet50", "googlenet", "efficientnet_lite0"]
    assert models["efficientnet_lite0"].mean == (127.0, 127.0, 127.0)
    assert models["vgg16"].std[0] == pytest.approx(0.229 * 255)
    assert all(info.default_size == 224 for info in models.values())


def test_unknown_model_is_refused():
    with pytest.raises(UnknownModel):
        load_model("lenet")
