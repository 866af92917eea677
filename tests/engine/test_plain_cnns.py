"""torchvision's VGGs and AlexNet, and its built-ins' weight URLs, without torchvision: each checked against
torchvision itself, and a VGG16 render's loading imports no torchvision."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from core.engine.plain_cnns import TORCHVISION_BUILDERS
from core.model_config import BUILTIN_MODELS, TORCHVISION_WEIGHT_URLS, TorchvisionWeights

ARCHITECTURES = sorted(TORCHVISION_BUILDERS)
INPUT_SIDE = 64  # AlexNet's smallest is 63; VGG's five pools leave 2x2


def both(architecture: str, seed: int, **options: float) -> tuple[nn.Module, nn.Module]:
    """(ours, torchvision's), each built after seeding torch's generator alike."""
    torch.manual_seed(seed)
    ours = TORCHVISION_BUILDERS[architecture](**options)
    torch.manual_seed(seed)
    theirs = torchvision.models.get_model(architecture, weights=None, **options)
    return ours, theirs


def test_the_plain_cnns_are_torchvisions_vgg_and_alexnet_families():
    vgg_and_alexnet = {name for name in torchvision.models.list_models() if name.startswith(("vgg", "alexnet"))}
    assert set(ARCHITECTURES) == vgg_and_alexnet


@pytest.mark.parametrize("num_classes", [1000, 10])
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_module_tree_and_state_dict_are_torchvisions(architecture: str, num_classes: int):
    with torch.device("meta"):
        ours, theirs = both(architecture, seed=0, num_classes=num_classes)
    assert type(ours).__name__ == type(theirs).__name__
    assert [(path, type(module)) for path, module in ours.named_modules() if path] == [
        (path, type(module)) for path, module in theirs.named_modules() if path
    ]
    assert repr(ours) == repr(theirs)  # every module's settings too: kernel sizes, strides, in-place ReLUs, dropouts
    shapes = {key: tensor.shape for key, tensor in ours.state_dict().items()}
    assert shapes == {key: tensor.shape for key, tensor in theirs.state_dict().items()}
    assert list(shapes) == list(theirs.state_dict())  # in the same order


def trained_like(key: str, tensor: torch.Tensor) -> torch.Tensor:
    """Weights unlike any init's (no zero biases, no unit BatchNorm statistics); variances positive."""
    if not tensor.is_floating_point():
        return tensor  # a BatchNorm's counter
    drawn = torch.randn_like(tensor)
    return drawn.abs() + 0.1 if key.endswith("running_var") else drawn


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_same_seed_draws_the_same_weights_and_the_same_weights_give_the_same_output(architecture: str):
    ours, theirs = both(architecture, seed=7, num_classes=10, dropout=0.3)
    for (key, mine), tensor in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(mine, tensor), key
    trained = {key: trained_like(key, tensor) for key, tensor in theirs.state_dict().items()}
    ours.load_state_dict(trained)
    theirs.load_state_dict(trained)
    pixels = torch.randn(2, 3, INPUT_SIDE, INPUT_SIDE)
    with torch.no_grad():
        output = ours.eval()(pixels)
        torch.testing.assert_close(output, theirs.eval()(pixels), rtol=0, atol=0)
    assert output.shape == (2, 10)


def test_the_vgg_init_can_be_left_to_pytorch_as_in_torchvision():
    ours, theirs = both("vgg11", seed=3, init_weights=False)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True))


def test_every_builtin_torchvision_url_is_torchvisions_own():
    named = {c.weights.torchvision for c in BUILTIN_MODELS.values() if isinstance(c.weights, TorchvisionWeights)}
    assert set(TORCHVISION_WEIGHT_URLS) == named
    for weights, url in TORCHVISION_WEIGHT_URLS.items():
        assert url == torchvision.models.get_weight(weights).url


LOAD_AND_LIST_TORCHVISION = """
import json, sys
from core.engine.models import check_model, load_model, model_info
check_model("vgg16")
load_model("vgg16")
print(json.dumps([model_info("vgg16").weights_file, "torchvision" in sys.modules]))
"""


def test_loading_vgg16_imports_no_torchvision(vgg16_home: Path):
    done = subprocess.run([sys.executable, "-c", LOAD_AND_LIST_TORCHVISION], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["vgg16-397923af.pth", False]
