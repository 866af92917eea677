"""Fused conv+ReLU kernels change nothing but the time: same outputs, same input gradients, same hooks."""

import pytest
import torch
from torch import nn

from core.engine import fusion
from core.engine.fusion import FusingSequential, fuse_conv_relu


def vgg_block() -> nn.Sequential:
    """Two VGG-style blocks, as torchvision builds them (in-place ReLUs)."""
    torch.manual_seed(0)
    first = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True)]
    second = [nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*first, *second).eval().requires_grad_(False)


def test_a_fused_network_computes_and_differentiates_like_the_plain_one(monkeypatch) -> None:
    fused_calls = []
    real_apply = fusion._ConvActivation.apply
    monkeypatch.setattr(fusion._ConvActivation, "apply", lambda *args: fused_calls.append(1) or real_apply(*args))
    plain = vgg_block()
    fused = fuse_conv_relu(nn.Sequential(vgg_block()))[0]
    assert isinstance(fused, FusingSequential) and list(fused.state_dict()) == list(plain.state_dict())

    for dtype_context in (torch.autocast("cpu", enabled=False), torch.autocast("cpu", dtype=torch.bfloat16)):
        x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last).requires_grad_(True)
        with dtype_context:
            ours, theirs = fused(x), plain(x)
        (ours_grad,) = torch.autograd.grad(ours.float().sum(), x)
        (theirs_grad,) = torch.autograd.grad(theirs.float().sum(), x)
        assert ours.dtype == theirs.dtype and torch.allclose(ours.float(), theirs.float(), atol=1e-5)
        assert torch.allclose(ours_grad, theirs_grad, rtol=1e-3, atol=1e-5)
    # every (conv, ReLU) pair ran as one kernel, in bf16 only where the CPU has oneDNN's bf16 kernels
    assert len(fused_calls) == 3 * (2 if fusion.fused_bf16_supported() else 1)


def test_without_bf16_kernels_a_bf16_forward_runs_unfused(monkeypatch) -> None:
    """On a CPU without AVX512-BW the fused kernel raises in bf16: the pairs then run as plain modules."""
    monkeypatch.setattr(fusion, "fused_bf16_supported", lambda: False)
    fused_calls = []
    monkeypatch.setattr(fusion._ConvActivation, "apply", lambda *args: fused_calls.append(1))
    plain, fused = vgg_block(), fuse_conv_relu(nn.Sequential(vgg_block()))[0]
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, theirs = fused(x), plain(x)
    assert not fused_calls and ours.dtype == torch.bfloat16 and torch.equal(ours, theirs)


def test_a_hooked_conv_runs_unfused_so_its_own_output_is_seen() -> None:
    features = fuse_conv_relu(nn.Sequential(vgg_block()))[0]
    seen = []
    features[2].register_forward_hook(lambda _m, _i, output: seen.append(output.clone()))
    features(torch.randn(1, 3, 16, 16))
    assert seen and (seen[0] < 0).any()  # before its ReLU


def test_in_bf16_a_strided_depthwise_conv_differentiates_like_the_plain_one() -> None:
    """Its input gradient is computed in fp32 (oneDNN's bf16 one is several times slower there) and handed
    back in bf16: the same as the plain modules' under autocast, to bf16's rounding."""
    if not fusion.fused_bf16_supported():
        pytest.skip("oneDNN's fused kernel has no bf16 on this CPU (no AVX512-BW)")
    torch.manual_seed(0)
    conv = nn.Conv2d(24, 24, 5, stride=2, padding=2, groups=24).eval().requires_grad_(False)
    plain = nn.Sequential(conv, nn.ReLU6())
    for stride, channels in (((2, 2), 24), ((1, 1), 24), ((2, 2), 1)):  # only the first takes the fp32 path
        conv.stride, conv.groups = stride, channels
        conv.weight = nn.Parameter(torch.randn(24, 24 // channels, 5, 5) / 5, requires_grad=False)
        x = torch.randn(2, 24, 19, 19).contiguous(memory_format=torch.channels_last).requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ours = fusion.conv_activation(conv, x, fusion.RELU6)
            theirs = plain(x)
        (ours_grad,) = torch.autograd.grad(ours.float().square().sum(), x)
        (theirs_grad,) = torch.autograd.grad(theirs.float().square().sum(), x)
        assert ours.dtype == theirs.dtype == torch.bfloat16
        torch.testing.assert_close(ours, theirs, rtol=0.02, atol=0.02)
        torch.testing.assert_close(ours_grad, theirs_grad, rtol=0.03, atol=0.03)
