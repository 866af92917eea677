"""BatchNorm folded into the conv before it (core.engine.folding): the same network, one pass fewer per pair."""

import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v2, resnet18

from core.engine import folding, fusion, load_model
from core.engine.features import FeatureExtractor
from core.engine.folding import fold_batch_norms


def trained_looking(network: nn.Module) -> nn.Module:
    """Random BN statistics and affine parameters, so that a fold that got them wrong shows."""
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            channels = module.num_features
            module.running_mean.copy_(torch.randn(channels, generator=generator))
            module.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
            module.weight.data.copy_(torch.randn(channels, generator=generator))
            module.bias.data.copy_(torch.randn(channels, generator=generator))
    return network.eval().requires_grad_(False)


def every_conv_plain(network: nn.Module) -> list:
    """A hook on every conv: folded convs run unfolded, as before folding."""
    return [m.register_forward_hook(lambda *_: None) for m in network.modules() if isinstance(m, nn.Conv2d)]


def output_and_input_gradient(network: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    out = network(x)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    return out.detach(), grad


def test_a_resnet_computes_and_differentiates_as_it_did_with_its_batch_norms() -> None:
    network = trained_looking(resnet18(num_classes=10))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    before = output_and_input_gradient(network, x)

    assert fold_batch_norms(network) == 20  # every conv of resnet18 has its own BN, the shortcut's too
    after = output_and_input_gradient(network, x)
    torch.testing.assert_close(after[0], before[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(after[1], before[1], rtol=1e-4, atol=1e-4)


def test_a_probed_conv_shows_its_own_output_not_the_normalized_one() -> None:
    network = trained_looking(resnet18())
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        (conv_before,) = FeatureExtractor(nn.Sequential(nn.Identity(), network), ["layer2.0.conv1"])(x)
        (block_before,) = FeatureExtractor(nn.Sequential(nn.Identity(), network), ["layer2.0"])(x)
    fold_batch_norms(network)
    with torch.no_grad():
        (conv_after,) = FeatureExtractor(nn.Sequential(nn.Identity(), network), ["layer2.0.conv1"])(x)
        (block_after,) = FeatureExtractor(nn.Sequential(nn.Identity(), network), ["layer2.0"])(x)
    normalized = network.layer2[0].bn1(conv_before)
    assert (normalized - conv_before).abs().max() > 1  # what a folded conv would have shown
    torch.testing.assert_close(conv_after, conv_before, rtol=1e-4, atol=1e-4)  # its own, unfolded (folds before it)
    torch.testing.assert_close(block_after, block_before, rtol=1e-4, atol=1e-4)


class SharedConvOutput(nn.Module):
    """A conv whose output the BN and a shortcut both read: folding it would change the shortcut's input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.second = nn.Conv2d(3, 3, 1)
        self.second_bn = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.second_bn(self.second(self.bn(y) + y))


def test_a_conv_whose_output_is_read_twice_keeps_its_batch_norm() -> None:
    network = trained_looking(SharedConvOutput())
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    before = network(x)
    assert fold_batch_norms(network) == 1  # only (second, second_bn)
    assert network.conv.forward.__func__ is nn.Conv2d.forward  # type: ignore[attr-defined]
    torch.testing.assert_close(network(x), before, rtol=1e-5, atol=1e-5)


def counting_fused_kernels(monkeypatch) -> list[str]:
    """The post-op of every fused conv + activation kernel run from now on."""
    calls: list[str] = []
    real_apply = fusion._ConvActivation.apply
    monkeypatch.setattr(
        fusion._ConvActivation, "apply", lambda *args: calls.append(args[4].post_op) or real_apply(*args)
    )
    return calls


def test_the_loaded_efficientnet_has_its_batch_norms_folded_and_renders_the_same_features(monkeypatch) -> None:
    model = load_model("efficientnet_lite0")
    folded = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.forward.__name__ == "conv_forward"]
    assert len(folded) == 49  # all its convs: each has a BatchNormAct2d of its own after it
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(4)) * 255
    fused = counting_fused_kernels(monkeypatch)
    after = output_and_input_gradient(model, x)
    relu6 = [m for m in model.modules() if type(m) is nn.ReLU6]
    assert len(relu6) == 33 and fused == ["hardtanh"] * 33  # each ReLU6 ran inside its conv's kernel
    handles = every_conv_plain(model)
    try:
        before = output_and_input_gradient(model, x)
    finally:
        for handle in handles:
            handle.remove()
    torch.testing.assert_close(after[0], before[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(after[1], before[1], rtol=1e-3, atol=1e-4)


def test_a_watched_activation_runs_on_its_own_so_its_hooks_see_what_they_saw(monkeypatch) -> None:
    model = load_model("efficientnet_lite0")
    block = model[1].blocks[1][0]  # conv_pw -> bn1 (ReLU6) -> conv_dw -> bn2 (ReLU6) -> conv_pwl -> bn3
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5)) * 255
    fused = counting_fused_kernels(monkeypatch)
    before_relu, after_relu = [], []
    handles = [
        block.bn1.register_forward_pre_hook(lambda _m, args: before_relu.append(args[0].clone())),
        block.bn2.act.register_forward_hook(lambda _m, _i, output: after_relu.append(output.clone())),
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    assert len(fused) == 31  # the two watched ones ran apart
    assert (before_relu[0] < 0).any() and (before_relu[0] > 6).any()  # the folded conv's output, before its ReLU6
    assert after_relu[0].min() == 0 and after_relu[0].max() <= 6


def test_under_bf16_autocast_the_fused_relu6_computes_as_the_separate_one(monkeypatch) -> None:
    """In bf16 the fused kernel runs only where oneDNN has its bf16 kernels; either way the features agree
    with those of the same folded convs whose ReLU6s run on their own (a hook on each keeps it apart)."""
    model = load_model("efficientnet_lite0")
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6)) * 255
    fused = counting_fused_kernels(monkeypatch)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        (ours,) = FeatureExtractor(model, ["blocks.3"])(x)
        fused_before_hooks = len(fused)
        relu6 = [m for m in model.modules() if type(m) is nn.ReLU6]
        handles = [m.register_forward_pre_hook(lambda *_: None) for m in relu6]
        try:
            (theirs,) = FeatureExtractor(model, ["blocks.3"])(x)
        finally:
            for handle in handles:
                handle.remove()
    assert fused_before_hooks == (16 if fusion.fused_bf16_supported() else 0)  # the ReLU6s up to blocks.3
    # none with its ReLU6 watched; the three strided depthwise convs still run as the kernel, without it
    assert fused[fused_before_hooks:] == (["none"] * 3 if fusion.fused_bf16_supported() else [])
    assert ours.dtype == theirs.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), theirs.float(), rtol=0.02, atol=0.02)


def folded_mobilenet_blocks() -> nn.Module:
    """MobileNetV2's first blocks, their BNs folded, each ReLU6 a module of its own: the stem (a full conv,
    stride 2), a block with a depthwise conv of stride 1, then the downsampling block (1x1 expand, 3x3
    depthwise of stride 2, 1x1 project)."""
    torch.manual_seed(0)
    blocks = trained_looking(mobilenet_v2().features[:3])
    assert fold_batch_norms(blocks) == 6
    return blocks


needs_fused_bf16 = pytest.mark.skipif(
    not fusion.fused_bf16_supported(), reason="oneDNN's fused kernel has no bf16 on this CPU (no AVX512-BW)"
)


def assert_same_to_one_percent(ours: tuple[torch.Tensor, ...], theirs: tuple[torch.Tensor, ...]) -> None:
    """Each tensor within 1 % of the other's (and of its largest magnitude)."""
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.float(), b.float(), rtol=0.01, atol=0.01 * b.abs().max().item())


def as_a_plain_conv(monkeypatch) -> None:
    """From now on a conv with no fused activation runs as a conv, never as the fusion's kernel."""
    monkeypatch.setattr(folding, "conv_alone", lambda conv, x, weight, bias: conv._conv_forward(x, weight, bias))


@needs_fused_bf16
def test_under_bf16_a_folded_strided_depthwise_conv_runs_as_the_kernel_with_the_same_numbers(monkeypatch) -> None:
    """Under bf16 the strided depthwise conv runs as the fusion's kernel without an activation, its input
    gradient taken in fp32: the output and the input gradient are those of the folded conv run as a conv
    (on this CPU, to the bit), only sooner."""
    blocks = folded_mobilenet_blocks()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    kernels = counting_fused_kernels(monkeypatch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = output_and_input_gradient(blocks, x)
        assert kernels == ["none"]  # the strided depthwise conv alone; the others run as convs do
        as_a_plain_conv(monkeypatch)
        theirs = output_and_input_gradient(blocks, x)
    assert kernels == ["none"] and ours[0].dtype == theirs[0].dtype == torch.bfloat16
    assert_same_to_one_percent(ours, theirs)


@needs_fused_bf16
def test_under_bf16_a_probed_strided_depthwise_conv_runs_as_the_kernel_and_shows_its_own_output(
    monkeypatch,
) -> None:
    """A probed conv runs unfolded; a strided depthwise one under bf16 still runs as the kernel without an
    activation, so its hook sees the conv's own output, as a plain conv gives it."""
    extractor = FeatureExtractor(nn.Sequential(nn.Identity(), folded_mobilenet_blocks()), ["2.conv.1.0"])

    def probed() -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(8)).requires_grad_(True)
        (output,) = extractor(x)
        (grad,) = torch.autograd.grad(output.float().square().sum(), x)
        return output.detach(), grad

    kernels = counting_fused_kernels(monkeypatch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = probed()
        assert kernels == ["none"]  # the probed conv itself
        as_a_plain_conv(monkeypatch)
        theirs = probed()
    assert kernels == ["none"]
    assert_same_to_one_percent(ours, theirs)
