"""What a picture climbs: objectives that compose, and their value on a chunk of rows.

An objective maps what one forward pass gave for some rows (``Activations``) to one number per
row, (b,), higher is better, so rows never mix. As in lucent's ``optvis.objectives``, objectives
compose with arithmetic and wrappers instead of being special cases of the loop::

    channel()                                     the filter's mean activation
    redirected(channel())                         ... where its ReLU is silent, the ReLU's input's
    c - DIVERSITY_WEIGHT * magnitude(c, 3) * similarity(3)     (c = channel()) three pictures pushed apart

``ChunkObjective`` evaluates one on a chunk's rows, each row on its own layer, from one forward
pass to the deepest of their layers (core.engine.features), averaged over the views of a step.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.engine.batch_plan import Row
from core.engine.features import ChannelExtractor, FeatureExtractor, select_channels
from core.engine.layers import LayerInfo
from core.spec import RenderSpec

DIVERSITY_WEIGHT = 1.0  # in units of the group's mean |objective|: style similarity costs that much
REDIRECT_FRACTION = 0.5  # robust: the first half of the steps let silent ReLU filters climb their input


@dataclass(frozen=True)
class Activations:
    """Some rows' output on their layer, as the layer shows it (after its ReLU, where it has one).

    ``own``: each row's own channel, (b, h, w), or (b,) of a vector output (the logits);
    ``layer``: the whole output, (b, C, h, w), where an objective reads it (else None);
    ``before_relu``: the same before the layer's ReLU (None where the layer has none).
    """

    own: torch.Tensor
    layer: torch.Tensor | None = None
    before_relu: "Activations | None" = None


class Objective:
    """``objective(activations)`` -> (b,); composes with ``-``, ``*`` and a number in front."""

    def __init__(self, value: Callable[[Activations], torch.Tensor], reads_layer: bool = False) -> None:
        self._value = value
        self.reads_layer = reads_layer  # reads the whole layer, not only each row's own channel

    def __call__(self, activations: Activations) -> torch.Tensor:
        return self._value(activations)

    def __sub__(self, other: "Objective") -> "Objective":
        return Objective(lambda a: self(a) - other(a), self.reads_layer or other.reads_layer)

    def __mul__(self, other: "Objective") -> "Objective":
        return Objective(lambda a: self(a) * other(a), self.reads_layer or other.reads_layer)

    def __rmul__(self, factor: float) -> "Objective":
        return Objective(lambda a: factor * self(a), self.reads_layer)


# --- terms ---------------------------------------------------------------------------------


def _channel(activations: Activations) -> torch.Tensor:
    maps = activations.own
    return maps.reshape(len(maps), -1).float().mean(dim=1)


def _neuron(activations: Activations) -> torch.Tensor:
    maps = activations.own
    if maps.dim() == 1:
        return maps.float()
    height, width = maps.shape[-2:]
    return maps[:, height // 2, width // 2].float()


def _whole_layer(activations: Activations) -> torch.Tensor:
    assert activations.layer is not None, "an objective that reads the layer gets it"
    output = activations.layer
    return output.float().pow(2).reshape(len(output), -1).mean(dim=1)


def channel() -> Objective:
    """The filter's mean activation (the seed's objective); for the logits, the class logit."""
    return Objective(_channel)


def neuron() -> Objective:
    """The filter at the center position of the feature map."""
    return Objective(_neuron)


def whole_layer() -> Objective:
    """DeepDream: the mean squared activation of every channel at once."""
    return Objective(_whole_layer, reads_layer=True)


def similarity(group: int) -> Objective:
    """Each row's mean cosine similarity of style (Gram matrix) to the other rows of its group.

    Rows come in consecutive groups of ``group`` pictures of the same filter; subtracting this
    from the objective pushes them apart (Lucid's diversity objective).
    """

    def value(activations: Activations) -> torch.Tensor:
        assert activations.layer is not None, "an objective that reads the layer gets it"
        output = activations.layer
        batch, channels = output.shape[:2]
        flat = output.float().reshape(batch, channels, -1)
        grams = F.normalize((flat @ flat.transpose(1, 2)).reshape(batch, -1), dim=1)  # (B, C*C)
        grams = grams.view(batch // group, group, -1)
        similarities = grams @ grams.transpose(1, 2)  # (B/group, group, group)
        others = similarities.sum(dim=2) - similarities.diagonal(dim1=1, dim2=2)
        return (others / (group - 1)).reshape(batch)

    return Objective(value, reads_layer=True)


def magnitude(objective: Objective, group: int) -> Objective:
    """The mean |objective| of each row's group, as a constant (no gradient): a scale for other terms."""

    def value(activations: Activations) -> torch.Tensor:
        return objective(activations).detach().abs().view(-1, group).mean(dim=1).repeat_interleave(group)

    return Objective(value, objective.reads_layer)


def redirected(objective: Objective) -> Objective:
    """The ReLU redirect: a row whose objective is not positive (its ReLU silent) climbs the
    objective of the layer's input instead, so a dead filter has a gradient to follow."""

    def value(activations: Activations) -> torch.Tensor:
        seen = objective(activations)
        if activations.before_relu is None:
            return seen
        return torch.where(seen > 0, seen, objective(activations.before_relu))

    return Objective(value, objective.reads_layer)


def measured(spec: RenderSpec) -> Objective:
    """What a request's pictures are measured by: its ``objective`` (class: the logit, a channel)."""
    if spec.objective == "layer":
        return whole_layer()
    return neuron() if spec.objective == "neuron" else channel()


def climbed(spec: RenderSpec, redirect: bool) -> Objective:
    """What a request's rows climb: its objective, through the ReLU redirect where asked, and
    with ``diversity`` pictures per filter the style similarity within each filter's group paid for."""
    objective = measured(spec)
    if redirect:
        objective = redirected(objective)
    if spec.diversity > 1:
        group = spec.diversity
        objective = objective - DIVERSITY_WEIGHT * magnitude(objective, group) * similarity(group)
    return objective


# --- on a chunk ----------------------------------------------------------------------------


def layer_runs(rows: list[Row]) -> list[tuple[LayerInfo, slice]]:
    """Consecutive rows of one layer, as (layer, rows)."""
    runs: list[tuple[LayerInfo, slice]] = []
    start = 0
    for index in range(1, len(rows) + 1):
        if index == len(rows) or rows[index].layer != rows[start].layer:
            runs.append((rows[start].layer, slice(start, index)))
            start = index
    return runs


def _activations(pre: torch.Tensor, relu: bool, channels: torch.Tensor, whole: bool) -> Activations:
    """Activations from a layer's output before its ReLU: ``pre`` is the whole output where
    ``whole``, else each row's own channel already."""
    if not whole:
        return Activations(F.relu(pre), None, Activations(pre)) if relu else Activations(pre)
    raw = Activations(select_channels(pre, channels), pre)
    if not relu:
        return raw
    seen = F.relu(pre)
    return Activations(select_channels(seen, channels), seen, raw)


def _extractor(
    model: nn.Sequential, paths: list[str], whole: bool
) -> Callable[[torch.Tensor, torch.Tensor], list[torch.Tensor]]:
    """(pixels, each row's channel) -> per path: the whole outputs, or (one path) each row's own channel."""
    if whole:
        features = FeatureExtractor(model, paths)
        return lambda pixels, _channels: features(pixels)
    (path,) = paths
    own_channels = ChannelExtractor(model, path)
    return lambda pixels, channels: [own_channels(pixels, channels)]


class ChunkObjective:
    """The objective of a chunk's rows, each on its own layer; the forward runs to the deepest, once.

    ``objective(pixels, step)`` is what the step climbs (all but classic: redirected through silent ReLUs
    for the first ``REDIRECT_FRACTION`` of the steps); ``measure(pixels)`` what is reported.
    ``pixels`` holds one or more views of the chunk's B rows, view after view: (views * B, 3, H, W).
    """

    def __init__(self, spec: RenderSpec, rows: list[Row], model: nn.Sequential, device: torch.device) -> None:
        self._spec = spec
        self._runs = layer_runs(rows)
        self._channels = torch.tensor([row.filter for row in rows], device=device)
        self._early, self._late = climbed(spec, redirect=True), climbed(spec, redirect=False)
        self._redirect_steps = int((spec.steps or 0) * REDIRECT_FRACTION) if spec.method != "classic" else 0
        self._measured = measured(spec)
        self._whole = self._late.reads_layer or len(self._runs) > 1  # several layers: several outputs
        self._extract = _extractor(model, [layer.module_path for layer, _ in self._runs], self._whole)

    def __call__(self, pixels: torch.Tensor, step: int) -> torch.Tensor:
        """(B,) what this step climbs, averaged over the views."""
        objective = self._early if step < self._redirect_steps else self._late
        values = [objective(a) for a in self._each_run(pixels, self._spec.precision == "bf16")]
        return torch.cat(values).view(-1, len(self._channels)).mean(dim=0)

    @torch.no_grad()
    def measure(self, pixels: torch.Tensor) -> tuple[list[float], list[bool]]:
        """The objective of each row on ``pixels``, in fp32, and whether the row's filter is silent there."""
        activations: list[float] = []
        silent: list[bool] = []
        for run in self._each_run(pixels, low_precision=False):
            activations += self._measured(run).tolist()
            if self._spec.objective in ("channel", "neuron"):
                silent += (run.own.reshape(len(run.own), -1).amax(dim=1) <= 0).tolist()
            else:
                silent += [False] * len(run.own)
        return activations, silent

    def _each_run(self, pixels: torch.Tensor, low_precision: bool) -> Iterator[Activations]:
        """Per view, per run of rows of one layer: their activations."""
        batch = len(self._channels)
        channels = self._channels.repeat(len(pixels) // batch)
        with torch.autocast(pixels.device.type, dtype=torch.bfloat16, enabled=low_precision):
            outputs = self._extract(pixels, channels)
        for first in range(0, len(pixels), batch):
            for (layer, rows), output in zip(self._runs, outputs, strict=True):
                pre = output[first : first + batch][rows]
                yield _activations(pre, layer.relu, self._channels[rows], self._whole)
