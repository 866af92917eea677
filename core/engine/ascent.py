"""The two ways of climbing an objective: the seed's pixel ascent and the robust Lucid recipe.

Both expose the same calls to the render loop: ``candidate()`` (what the model sees this step),
``step(objective)`` (climb the (B,) objective), ``image()`` (current (B, 3, H, W) pixels) and
``keep(rows)`` (drop every other row, e.g. those of a canceled request, keeping the rest's state).
"""

import torch

from core.engine.params import FourierImage
from core.engine.transforms import random_warp


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
    """Adam on a decorrelated Fourier image, each step seen through a fresh random warp per row."""

    def __init__(self, start: FourierImage, learning_rate: float, generators: list[torch.Generator]) -> None:
        self._image = start
        self._generators = generators
        self._learning_rate = learning_rate
        self._optimizer = torch.optim.Adam(start.parameters(), lr=learning_rate)

    def candidate(self) -> torch.Tensor:
        return random_warp(self._image(), self._generators)

    def step(self, objective: torch.Tensor) -> None:
        self._optimizer.zero_grad(set_to_none=True)
        (-objective.sum()).backward()
        self._optimizer.step()

    def image(self) -> torch.Tensor:
        with torch.no_grad():
            return self._image()

    def keep(self, rows: torch.Tensor) -> None:
        """Adam's moments are per element: the kept rows go on exactly as they would have."""
        state = self._optimizer.state.get(self._image.spectrum, {})
        self._image = self._image.rows(rows)
        self._optimizer = torch.optim.Adam(self._image.parameters(), lr=self._learning_rate)
        if state:
            self._optimizer.state[self._image.spectrum] = {
                "step": state["step"], "exp_avg": state["exp_avg"][rows], "exp_avg_sq": state["exp_avg_sq"][rows]
            }
        self._generators = [self._generators[row] for row in rows.tolist()]
