"""load_model builds on the meta device and assigns the file's memory-mapped tensors: the network it gives
must be, tensor for tensor and output for output, the one built with random init and copied into."""

from pathlib import Path

import pytest
import torch
from torch import nn

from core.engine import load_model, models
from core.engine.folding import fold_batch_norms
from core.engine.fusion import fuse_conv_relu
from testkit.planted_weights import plant_missing_weights

# a timm architecture with non-persistent buffers (attention_bias_idxs), computed when built: no file holds them
LEVIT_TOML = """\
[models.my_levit]
architecture = "timm:levit_128s"
weights = "my_levit.safetensors"
num_classes = 10
preset = "imagenet"
"""


def loaded_as_before(name: str, weights_dir: Path | None = None) -> nn.Sequential:
    """The network as load_model made it before: built with random init, the file's tensors copied in (then
    its BatchNorms folded, as load_model does)."""
    config = models.model_config(name)
    path = models._weights_path(config, weights_dir)
    network = models._build(name, config)
    state = models._read_state(name, path)
    found = {key: tuple(tensor.shape) for key, tensor in state.items()}
    mapping = models._file_to_network(name, config, path, found, models._shapes(network))
    network.load_state_dict({theirs: state[ours] for ours, theirs in mapping.items()}, strict=False)
    models._after_loading(network)
    model = nn.Sequential(models.PixelNormalize(config.mean, config.std), fuse_conv_relu(network))
    model = model.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    fold_batch_norms(network)
    return model


def assert_same_network(fast: nn.Sequential, before: nn.Sequential, side: int) -> None:
    fast_state, before_state = fast.state_dict(), before.state_dict()
    assert list(fast_state) == list(before_state)
    for key, tensor in fast_state.items():
        old = before_state[key]
        assert tensor.device.type == "cpu" and tensor.dtype == old.dtype, key
        assert torch.equal(tensor, old), key
        if tensor.dim() == 4:
            assert tensor.is_contiguous(memory_format=torch.channels_last), key
    assert [type(m) for m in fast.modules()] == [type(m) for m in before.modules()]
    assert not fast.training and not any(p.requires_grad for p in fast.parameters())
    pixels = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        torch.testing.assert_close(fast(pixels), before(pixels), rtol=0, atol=0)


def test_planted_vgg16_loads_as_before(vgg16_home: Path) -> None:
    assert_same_network(load_model("vgg16"), loaded_as_before("vgg16"), 64)


def test_efficientnet_lite0s_package_weights_load_as_before() -> None:
    fast = load_model("efficientnet_lite0")
    assert_same_network(fast, loaded_as_before("efficientnet_lite0"), 64)
    counters = [t for k, t in fast.state_dict().items() if k.endswith("num_batches_tracked")]
    assert counters and all(int(t) == 0 for t in counters)  # not in the file (mapped by order): as built


def test_a_models_file_resnet18_safetensors_loads_as_before(own_models: Path) -> None:
    assert_same_network(load_model("my_resnet"), loaded_as_before("my_resnet"), 64)


@pytest.mark.parametrize("name", ["resnet50", "googlenet"])
def test_planted_builtins_with_batchnorm_and_aux_heads_load_as_before(name: str, tmp_path: Path) -> None:
    assert plant_missing_weights([name], tmp_path) == [name]
    fast = load_model(name, tmp_path)
    assert_same_network(fast, loaded_as_before(name, tmp_path), 64)
    if name == "googlenet":  # its transform_input is a flag, and its training-only heads are dropped
        assert fast[1].transform_input and fast[1].aux1 is None


def test_non_persistent_buffers_get_their_values_as_built(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    network = timm.create_model("levit_128s", pretrained=False, num_classes=10)
    state = {key: tensor.contiguous() for key, tensor in network.state_dict().items()}
    save_file(state, tmp_path / "my_levit.safetensors")
    (tmp_path / "models.toml").write_text(LEVIT_TOML)
    models.use_models_file(tmp_path / "models.toml")
    try:
        fast, before = load_model("my_levit"), loaded_as_before("my_levit")
        key = "1.stages.0.blocks.0.attn.attention_bias_idxs"  # not in the file: computed when built
        indices = dict(fast.named_buffers())[key]
        assert indices.device.type == "cpu" and torch.equal(indices, dict(before.named_buffers())[key])
        assert not any(t.is_meta for t in [*fast.parameters(), *fast.buffers()])
        pixels = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
        with torch.no_grad():
            torch.testing.assert_close(fast(pixels), before(pixels), rtol=0, atol=0)
    finally:
        models.use_models_file(None)
