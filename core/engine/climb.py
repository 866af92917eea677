"""What one chunk of rows climbs: each row's objective on its own layer, from one forward pass."""

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from core.engine.batch_plan import Row
from core.engine.features import LayerProbe
from core.engine.layers import LayerInfo
from core.engine.objectives import OBJECTIVES, similarity_to_group, target_maps
from core.spec import RenderSpec

DIVERSITY_WEIGHT = 1.0  # in units of the group's mean |objective|: style similarity costs that much
REDIRECT_FRACTION = 0.5  # robust: the first half of the steps let silent ReLU filters climb their input


def _layer_runs(rows: list[Row]) -> list[tuple[LayerInfo, slice]]:
    """Consecutive rows of one layer, as (layer, rows)."""
    runs: list[tuple[LayerInfo, slice]] = []
    start = 0
    for index in range(1, len(rows) + 1):
        if index == len(rows) or rows[index].layer != rows[start].layer:
            runs.append((rows[start].layer, slice(start, index)))
            start = index
    return runs


class Climb:
    """The objective of a chunk's rows; the forward runs to the deepest of their layers, once."""

    def __init__(self, spec: RenderSpec, rows: list[Row], model: nn.Sequential, device: torch.device) -> None:
        self.spec = spec
        self.runs = _layer_runs(rows)
        self.targets = torch.tensor([row.filter for row in rows], device=device)
        one_channel = spec.objective in ("channel", "neuron") and spec.diversity == 1  # nothing else of the layer
        self.probe = LayerProbe(model, [layer.module_path for layer, _ in self.runs], self.targets if one_channel else None)
        # a probe that computes only each row's channel hands back that channel as channel 0
        self.channels = torch.zeros_like(self.targets) if self.probe.selects_channels else self.targets
        self.objective = OBJECTIVES[spec.objective]

    def outputs(
        self, pixels: torch.Tensor, low_precision: bool = False
    ) -> Iterator[tuple[LayerInfo, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per view and run of rows: (layer, pre-activation, output, each row's channel in that output).

        Pre-activation and output differ after a ReLU; the channel is 0 where the probe computed only it.

        ``pixels`` holds one or more views of the chunk's B rows, view after view: (views * B, 3, H, W).
        """
        with torch.autocast(pixels.device.type, dtype=torch.bfloat16, enabled=low_precision):
            captured = self.probe(pixels)
        batch = len(self.targets)
        for first in range(0, len(pixels), batch):
            for (layer, rows), output in zip(self.runs, captured):
                pre = output[first : first + batch][rows]
                yield layer, pre, (F.relu(pre) if layer.relu else pre), self.channels[rows]

    def value(self, pixels: torch.Tensor, step: int) -> torch.Tensor:
        """(B,) what this step climbs, averaged over the views: the objective, redirected and diversified where asked."""
        diversity = self.spec.diversity
        values = []
        for layer, pre, output, targets in self.outputs(pixels, self.spec.precision == "bf16"):
            value = self.objective(output, targets)
            if layer.relu and self.spec.method == "robust" and step < int(self.spec.steps * REDIRECT_FRACTION):
                value = torch.where(value > 0, value, self.objective(pre, targets))  # climb a silent ReLU's input
            if diversity > 1:
                scale = value.detach().abs().view(-1, diversity).mean(dim=1).repeat_interleave(diversity)
                value = value - DIVERSITY_WEIGHT * scale * similarity_to_group(output, diversity)
            values.append(value)
        return torch.cat(values).view(-1, len(self.targets)).mean(dim=0)

    @torch.no_grad()
    def measure(self, pixels: torch.Tensor) -> tuple[list[float], list[bool]]:
        """The objective of each row on ``pixels``, in fp32, and whether the row's filter is silent there."""
        activations: list[float] = []
        silent: list[bool] = []
        for _layer, _pre, output, targets in self.outputs(pixels):
            activations += self.objective(output, targets).tolist()
            if self.spec.objective in ("channel", "neuron"):
                maps = target_maps(output, targets)
                silent += (maps.reshape(len(maps), -1).amax(dim=1) <= 0).tolist()
            else:
                silent += [False] * len(targets)
        return activations, silent
