"""A naive port of the seed: one filter at a time, the whole convolutional base every step.

This is the reference the engine is measured (and, in the tests, checked) against: written as
plainly as the seed's Keras loop, with none of the engine's batching or early stopping.
"""

import numpy as np
import torch
from torch import nn


def chollet_deprocess(x: np.ndarray) -> np.ndarray:
    """The seed's display transform on one (H, W, 3) float image."""
    x = x - x.mean()
    x = x / (x.std() + 1e-5)
    x = x * 0.1 + 0.5
    x = np.clip(x, 0, 1) * 255
    return np.clip(x, 0, 255).astype("uint8")


def naive_render(
    model: nn.Module, output_module: nn.Module, filter_index: int, start: torch.Tensor, steps: int, step_size: float
) -> np.ndarray:
    """Gradient ascent on one (3, H, W) start image; returns the (H, W, 3) uint8 picture."""
    captured: dict[str, torch.Tensor] = {}
    handle = output_module.register_forward_hook(lambda _m, _i, output: captured.__setitem__("output", output))
    try:
        x = start[None].clone()
        for _ in range(steps):
            x.requires_grad_(True)
            model(x)  # the whole network, as the seed's Keras model did
            loss = captured["output"][0, filter_index].mean()
            (grad,) = torch.autograd.grad(loss, x)
            grad = grad / (grad.pow(2).mean().sqrt() + 1e-5)
            x = (x + grad * step_size).detach()
    finally:
        handle.remove()
    return chollet_deprocess(x[0].permute(1, 2, 0).numpy())
