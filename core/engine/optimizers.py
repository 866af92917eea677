"""The ways of climbing an objective: the seed's pixel ascent, the robust Lucid recipe, MACO's phase
ascent and feature accentuation.

All expose the same calls to the render loop: ``candidate()`` (what the model sees this step),
``step(objective)`` (climb the (B,) objective), ``image()`` (current (B, 3, H, W) pixels) and
``keep(rows)`` (drop every other row, e.g. those of a canceled request, keeping the rest's state);
``attribution()`` is the gradient magnitude accumulated over the steps per pixel, (B, H, W), for
transparency maps (None for classic).
"""

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from core.engine.accentuation import FeatureDistance, balanced_gradient
from core.engine.batch_plan import Row
from core.engine.parameterizations import FourierImage, PhaseImage
from core.engine.transforms import MILD, random_crops, random_warp
from core.spec import ImageInit, RenderSpec

Image = FourierImage | PhaseImage
View = Callable[[torch.Tensor, list[torch.Generator]], torch.Tensor]  # one view of every row, a generator each


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

    def attribution(self) -> None:
        return None


class RobustAscent:
    """Adam on a parameterized image (Fourier: robust; phase only: maco), each step seen through fresh
    random views of each row (warps: robust; crops and noise: maco).

    Tuned by bench/quality.py against the 512-step Lucid recipe (Adam 0.05, one warp a step):
    - ``VIEWS`` views of every row per step, their objectives averaged: the views' noise, not the
      step size, is what slows the climb (two views ~ twice the steps, at half the batch count);
    - Adam's first moment short (beta1 0.5): the landscape moves with every view, old gradients go stale;
    - the picture shown is an exponential average of the parameters (``AVERAGE_DECAY``), which
      takes out the last steps' jitter and lets a larger learning rate (0.2) move fast.
    """

    VIEWS = 2
    BETAS = (0.5, 0.999)
    AVERAGE_DECAY = 0.9

    def __init__(
        self, start: Image, learning_rate: float, generators: list[list[torch.Generator]], view: View = random_warp
    ) -> None:
        self._image = start
        self._shown = start.rows(torch.arange(len(generators), device=start.parameter.device))  # the running average
        self._generators = generators  # per row, one generator per view
        self._view = view
        self._learning_rate = learning_rate
        self._optimizer = torch.optim.Adam(start.parameters(), lr=learning_rate, betas=self.BETAS)
        self._pixels = torch.empty(0)  # this step's picture, whose gradient is the attribution's
        self._attribution = torch.zeros(0)

    def candidate(self) -> torch.Tensor:
        """(views * B, 3, H', W'): every row's views, view after view."""
        self._pixels = self._image()
        self._pixels.retain_grad()
        return torch.cat([self._view(self._pixels, [row[v] for row in self._generators]) for v in range(self.VIEWS)])

    def step(self, objective: torch.Tensor) -> None:
        self._optimizer.zero_grad(set_to_none=True)
        (-objective.sum()).backward()
        self._attribute(self._pixels.grad)
        self._optimizer.step()
        self._average()

    def _attribute(self, pixel_gradient: torch.Tensor | None) -> None:
        assert pixel_gradient is not None, "the objective depends on the picture"
        magnitude = pixel_gradient.detach().abs().sum(dim=1)  # (B, H, W)
        self._attribution = magnitude if not self._attribution.numel() else self._attribution + magnitude

    def _average(self) -> None:
        with torch.no_grad():
            self._shown.parameter.lerp_(self._image.parameter, 1 - self.AVERAGE_DECAY)

    def image(self) -> torch.Tensor:
        with torch.no_grad():
            return self._shown()

    def attribution(self) -> torch.Tensor | None:
        return self._attribution if self._attribution.numel() else None

    def keep(self, rows: torch.Tensor) -> None:
        """Adam's moments are per element: the kept rows go on exactly as they would have."""
        state = self._optimizer.state.get(self._image.parameter, {})
        self._image = self._image.rows(rows)
        self._shown = self._shown.rows(rows)
        self._optimizer = torch.optim.Adam(self._image.parameters(), lr=self._learning_rate, betas=self.BETAS)
        if state:
            self._optimizer.state[self._image.parameter] = {
                "step": state["step"],
                "exp_avg": state["exp_avg"][rows],
                "exp_avg_sq": state["exp_avg_sq"][rows],
            }
        self._generators = [self._generators[row] for row in rows.tolist()]
        if self._attribution.numel():
            self._attribution = self._attribution[rows]


class AccentuateAscent(RobustAscent):
    """Feature accentuation (core.engine.accentuation): the photo's phase climbs the objective through
    mild warps, while the feature distance to the photo, seen through the same warps, pulls back with
    a weight balanced against the objective's gradient, per row and step. One view a step: the
    warps are mild, and each view is paid twice (the objective's pass and the distance's)."""

    VIEWS = 1

    def __init__(
        self,
        start: PhaseImage,
        photo: torch.Tensor,
        distance: FeatureDistance,
        learning_rate: float,
        generators: list[list[torch.Generator]],
    ) -> None:
        super().__init__(start, learning_rate, generators)
        self._photo = photo  # (B, 3, H, W)
        self._distance = distance
        self._views = self._photo_views = torch.empty(0)

    def candidate(self) -> torch.Tensor:
        self._pixels = self._image()
        self._pixels.retain_grad()
        both = torch.cat([self._pixels, self._photo], dim=1)  # (B, 6, H, W): one warp moves picture and photo alike
        warped = [random_warp(both, [row[v] for row in self._generators], MILD) for v in range(self.VIEWS)]
        self._views = torch.cat([view[:, :3] for view in warped])
        self._photo_views = torch.cat([view[:, 3:] for view in warped]).detach()
        return self._views

    def step(self, objective: torch.Tensor) -> None:
        parameter = self._image.parameter
        climb, pixel_gradient = torch.autograd.grad(-objective.sum(), [parameter, self._pixels], retain_graph=True)
        self._attribute(pixel_gradient)
        (keep,) = torch.autograd.grad(self._distance(self._views, self._photo_views).sum(), [parameter])
        self._optimizer.zero_grad(set_to_none=True)
        parameter.grad = balanced_gradient(climb, keep)
        self._optimizer.step()
        self._average()

    def keep(self, rows: torch.Tensor) -> None:
        super().keep(rows)
        self._photo = self._photo[rows]
        self._distance = self._distance.keep(rows)


class Optimizer(Protocol):
    """What the render loop asks of either optimizer."""

    def candidate(self) -> torch.Tensor: ...
    def step(self, objective: torch.Tensor) -> None: ...
    def image(self) -> torch.Tensor: ...
    def keep(self, rows: torch.Tensor) -> None: ...
    def attribution(self) -> torch.Tensor | None: ...


def optimizer_for(
    spec: RenderSpec, rows: list[Row], start: torch.Tensor, device: torch.device, model: nn.Sequential
) -> Optimizer:
    """The optimizer of the spec's method, set up on ``rows`` from their classic start pixels ``start``.

    A start image's ``strength`` scales the step: how far the picture may move from the photo. From a
    photo, maco keeps the photo's own magnitude spectrum (its phase moves).
    """
    strength = spec.init.strength if isinstance(spec.init, ImageInit) else 1.0
    step_size = (spec.step_size or 0.0) * strength
    if spec.method == "classic":
        return ClassicAscent(start.to(device).contiguous(memory_format=torch.channels_last), step_size)
    from_photo = isinstance(spec.init, ImageInit)
    if spec.method == "accentuate":
        photo = start.to(device)
        distance = FeatureDistance(rows, model, device, own_channel_free=spec.objective != "layer")
        generators = _view_generators(rows, views=AccentuateAscent.VIEWS)
        return AccentuateAscent(PhaseImage.from_pixels(photo), photo, distance, step_size, generators)
    if spec.method == "maco":
        if from_photo:
            image = PhaseImage.from_pixels(start.to(device))
        else:
            image = PhaseImage.from_natural([row.generator() for row in rows], spec.size).to(device)
        return RobustAscent(image, step_size, _view_generators(rows, "crop"), random_crops)
    if from_photo:
        fourier = FourierImage.from_pixels(start.to(device))
    else:
        fourier = FourierImage.from_noise([row.generator() for row in rows], spec.size).to(device)
    return RobustAscent(fourier, step_size, _view_generators(rows))


def _view_generators(
    rows: list[Row], purpose: str = "warp", views: int = RobustAscent.VIEWS
) -> list[list[torch.Generator]]:
    """Per row, one generator per view (the first view's purpose is the bare word: robust's seeds as they were)."""
    return [[row.generator(f"{purpose}{view}" if view else purpose) for view in range(views)] for row in rows]
