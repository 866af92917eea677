"""The two ways of climbing an objective: the seed's pixel ascent and the robust Lucid recipe.

Both expose the same calls to the render loop: ``candidate()`` (what the model sees this step),
``step(objective)`` (climb the (B,) objective), ``image()`` (current (B, 3, H, W) pixels) and
``keep(rows)`` (drop every other row, e.g. those of a canceled request, keeping the rest's state).
"""

from typing import Protocol

import torch

from core.engine.batch_plan import Row
from core.engine.parameterizations import FourierImage
from core.engine.transforms import random_warp
from core.spec import ImageInit, RenderSpec


class ClassicAscent:
    """The seed: x += step_size * grad / (rms(grad) + 1e-5), per row, on the pixels themselves."""

    def __init__(self, start: torch.Tensor, step_size: float) -> None:
        self._pixels = start.detach().clone()  # (B, 3, H, W)
        self._step_size = step_size

    def candidate(self) -> torch.Tensor:
        self._pixels.requires_grad_(True)
        return self._pixels

    def step(self, objective: torch.Tensor) -> None:
        (grad,) = torch.autograd.grad(objective.sum(), self._pixels)
        rms = grad.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
        self._pixels = (self._pixels + self._step_size * grad / (rms + 1e-5)).detach()

    def image(self) -> torch.Tensor:
        return self._pixels.detach()

    def keep(self, rows: torch.Tensor) -> None:
        self._pixels = self._pixels.detach()[rows].contiguous(memory_format=torch.channels_last)


class RobustAscent:
    """Adam on a decorrelated Fourier image, each step seen through fresh random warps of each row.

    Tuned by bench/quality.py against the 512-step Lucid recipe (Adam 0.05, one warp a step):
    - ``VIEWS`` warps of every row per step, their objectives averaged: the warps' noise, not the
      step size, is what slows the climb (two views ~ twice the steps, at half the batch count);
    - Adam's first moment short (beta1 0.5): the landscape moves with every warp, old gradients go stale;
    - the picture shown is an exponential average of the parameters (``AVERAGE_DECAY``), which
      takes out the last steps' jitter and lets a larger learning rate (0.2) move fast.
    """

    VIEWS = 2
    BETAS = (0.5, 0.999)
    AVERAGE_DECAY = 0.9

    def __init__(self, start: FourierImage, learning_rate: float, generators: list[list[torch.Generator]]) -> None:
        self._image = start
        self._shown = start.rows(torch.arange(len(generators), device=start.spectrum.device))  # the running average
        self._generators = generators  # per row, one generator per view
        self._learning_rate = learning_rate
        self._optimizer = torch.optim.Adam(start.parameters(), lr=learning_rate, betas=self.BETAS)

    def candidate(self) -> torch.Tensor:
        """(views * B, 3, H', W'): every row's views, view after view."""
        pixels = self._image()
        views = [random_warp(pixels, [row[view] for row in self._generators]) for view in range(self.VIEWS)]
        return torch.cat(views)

    def step(self, objective: torch.Tensor) -> None:
        self._optimizer.zero_grad(set_to_none=True)
        (-objective.sum()).backward()
        self._optimizer.step()
        with torch.no_grad():
            self._shown.spectrum.lerp_(self._image.spectrum, 1 - self.AVERAGE_DECAY)

    def image(self) -> torch.Tensor:
        with torch.no_grad():
            return self._shown()

    def keep(self, rows: torch.Tensor) -> None:
        """Adam's moments are per element: the kept rows go on exactly as they would have."""
        state = self._optimizer.state.get(self._image.spectrum, {})
        self._image = self._image.rows(rows)
        self._shown = self._shown.rows(rows)
        self._optimizer = torch.optim.Adam(self._image.parameters(), lr=self._learning_rate, betas=self.BETAS)
        if state:
            self._optimizer.state[self._image.spectrum] = {
                "step": state["step"],
                "exp_avg": state["exp_avg"][rows],
                "exp_avg_sq": state["exp_avg_sq"][rows],
            }
        self._generators = [self._generators[row] for row in rows.tolist()]


class Optimizer(Protocol):
    """What the render loop asks of either optimizer."""

    def candidate(self) -> torch.Tensor: ...
    def step(self, objective: torch.Tensor) -> None: ...
    def image(self) -> torch.Tensor: ...
    def keep(self, rows: torch.Tensor) -> None: ...


def optimizer_for(spec: RenderSpec, rows: list[Row], start: torch.Tensor, device: torch.device) -> Optimizer:
    """The optimizer of the spec's method, set up on ``rows`` from their classic start pixels ``start``.

    A start image's ``strength`` scales the step: how far the picture may move from the photo.
    """
    strength = spec.init.strength if isinstance(spec.init, ImageInit) else 1.0
    step_size = (spec.step_size or 0.0) * strength
    if spec.method == "classic":
        return ClassicAscent(start.to(device).contiguous(memory_format=torch.channels_last), step_size)
    if isinstance(spec.init, ImageInit):
        image = FourierImage.from_pixels(start.to(device))
    else:
        image = FourierImage.from_noise([row.generator() for row in rows], spec.size).to(device)
    views = [[row.generator(f"warp{view}" if view else "warp") for view in range(RobustAscent.VIEWS)] for row in rows]
    return RobustAscent(image, step_size, views)
