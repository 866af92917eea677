"""The render loop: batched activation maximization, one batch row per picture.

``method="classic"`` is the seed's algorithm exactly: start from N(127, 10) noise in 0..255 pixel
space (or from a photo), take the gradient of the filter's mean activation, divide it by its RMS
(+1e-5) per row, ``x += step_size * grad``, and show the result with Chollet's display transform.
``method="robust"`` optimizes a decorrelated Fourier image with Adam through random warps and
shows the image as it is. Rows never interact (eval mode, per-row normalization, Adam's
per-element updates, per-row seeds and warps), so a filter's picture does not depend on which
other filters shared its batch — except with ``diversity``, whose pictures of one filter push
each other apart and so always share a batch.
"""

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from core.engine.ascent import ClassicAscent, RobustAscent
from core.engine.layers import LayerInfo, list_layers, resolve_layer
from core.engine.models import load_model, model_info
from core.engine.objectives import OBJECTIVES, similarity_to_group, target_maps
from core.engine.params import FourierImage
from core.engine.pictures import display_transform, encode_animation, encode_grid, encode_png, image_to_pixels, quantize
from core.engine.probe import LayerProbe
from core.engine.transforms import STANDARD
from core.errors import FilterOutOfRange, SizeOutOfRange
from core.spec import ImageInit, RenderSpec

StepCallback = Callable[[int, int], None]  # (steps done, steps in all); may raise to abort

# Bytes of activation memory one batch row needs, per float of the layers' outputs: the forward
# keeps every output for the backward, which makes one gradient of the same size again, plus slack.
_BYTES_PER_ACTIVATION = 4 * 3
DIVERSITY_WEIGHT = 1.0  # in units of the group's mean |objective|: style similarity costs that much
REDIRECT_FRACTION = 0.5  # robust: the first half of the steps let silent ReLU filters climb their input


@dataclass(frozen=True)
class FilterRender:
    filter: int
    variant: int  # 0 .. diversity-1
    png: bytes
    activation: float  # the objective on the final 8-bit PNG (channel: the filter's mean activation)
    start_activation: float  # ... and on the start image
    dead: bool  # never fired: silent on the start image and still <= 0 on the final PNG
    animation: bytes | None  # animated WebP of the snapshots, when asked for


@dataclass(frozen=True)
class RenderResult:
    layer: LayerInfo
    filters: list[FilterRender]
    grid_png: bytes
    device: str
    seconds: dict[str, float]


@dataclass(frozen=True)
class _Rows:
    """The batch rows of a render: each requested filter ``diversity`` times, in filter order."""

    filters: list[int]
    variants: list[int]

    @classmethod
    def of(cls, spec: RenderSpec) -> "_Rows":
        pairs = [(f, v) for f in spec.filters for v in range(spec.diversity)]
        return cls([f for f, _ in pairs], [v for _, v in pairs])

    def __len__(self) -> int:
        return len(self.filters)

    def generators(self, seed: int, purpose: str = "") -> list[torch.Generator]:
        return [torch.Generator().manual_seed(row_seed(seed, f, v, purpose)) for f, v in zip(self.filters, self.variants)]

    def labels(self, spec: RenderSpec) -> list[str]:
        if spec.objective == "layer":
            return [spec.layer] * len(self)
        prefix = "class " if spec.objective == "class" else ""
        return [f"{prefix}{f}" + (f".{v}" if spec.diversity > 1 else "") for f, v in zip(self.filters, self.variants)]


def check_spec(spec: RenderSpec) -> LayerInfo:
    """The layer the spec names, once model, layer, filters and size are known to fit together."""
    model_info(spec.model)  # UnknownModel lists the valid ones
    layer = resolve_layer(spec.model, spec.layer, spec.size)
    out_of_range = [f for f in spec.filters if f >= layer.filters]
    if out_of_range:
        kind = "classes" if spec.objective == "class" else "filters"
        raise FilterOutOfRange(
            f"layer {layer.name} of {spec.model} has {layer.filters} {kind} (0-{layer.filters - 1}); "
            f"out of range: {', '.join(map(str, out_of_range[:10]))}"
        )
    if 0 in layer.output_shape[1:]:
        raise SizeOutOfRange(
            f"at {spec.size[0]}x{spec.size[1]} pixels layer {layer.name} of {spec.model} has no pixels left; "
            f"use a larger size (the model's default is {model_info(spec.model).default_size})"
        )
    return layer


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def row_seed(seed: int, filter_index: int, variant: int = 0, purpose: str = "") -> int:
    """A seed per (request seed, filter, variant, purpose): a row never depends on its batch-mates."""
    key = f"{seed}:{filter_index}" + (f":{variant}" if variant else "") + (f":{purpose}" if purpose else "")
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1


def start_pixels(spec: RenderSpec, init_image: Image.Image | None) -> torch.Tensor:
    """(B, 3, H, W) float32 start pixels of the classic method, on the CPU, one row per picture."""
    rows = _Rows.of(spec)
    if isinstance(spec.init, ImageInit):
        if init_image is None:
            raise ValueError("the spec starts from an image, but no init_image was given")
        return image_to_pixels(init_image, spec.size).expand(len(rows), -1, -1, -1).clone()
    noise = [torch.randn((3, *spec.size), generator=g) for g in rows.generators(spec.seed)]  # (3, H, W) each
    return torch.stack(noise) * spec.init.std + spec.init.mean


def _ascent(spec: RenderSpec, rows: _Rows, start: torch.Tensor, device: torch.device):
    """The optimizer of the spec's method, set up on ``rows`` from classic start pixels ``start``."""
    strength = spec.init.strength if isinstance(spec.init, ImageInit) else 1.0
    if spec.method == "classic":
        return ClassicAscent(start.to(device).contiguous(memory_format=torch.channels_last), spec.step_size * strength)
    if isinstance(spec.init, ImageInit):
        image = FourierImage.from_pixels(start.to(device))
    else:
        image = FourierImage.from_noise(rows.generators(spec.seed), spec.size).to(device)
    return RobustAscent(image, spec.step_size * strength, rows.generators(spec.seed, "warp"))


def rows_per_chunk(spec: RenderSpec, layer: LayerInfo, memory_budget_mb: int) -> int:
    """How many rows fit in one batch within the activation-memory budget (whole diversity groups)."""
    pad = STANDARD.pad if spec.method == "robust" else 0
    floats = 0
    for info in list_layers(spec.model, (spec.size[0] + 2 * pad, spec.size[1] + 2 * pad)):
        floats += math.prod(info.output_shape)
        if info.name == layer.name:
            break
    rows = max(1, memory_budget_mb * 2**20 // max(1, floats * _BYTES_PER_ACTIVATION))
    return max(spec.diversity, rows - rows % spec.diversity)


class _Climb:
    """One chunk of rows climbing the spec's objective on one layer."""

    def __init__(self, spec: RenderSpec, layer: LayerInfo, probe: LayerProbe, targets: torch.Tensor) -> None:
        self.spec, self.layer, self.probe, self.targets = spec, layer, probe, targets
        self.objective = OBJECTIVES[spec.objective]
        self.redirect_steps = int(spec.steps * REDIRECT_FRACTION) if spec.method == "robust" and layer.relu else 0

    def outputs(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-activation, output) of the layer; they differ only for layers seen after a ReLU."""
        pre = self.probe(pixels)
        return pre, (F.relu(pre) if self.layer.relu else pre)

    def value(self, pixels: torch.Tensor, step: int) -> torch.Tensor:
        """(B,) what this step climbs: the objective, redirected and diversified where asked."""
        pre, output = self.outputs(pixels)
        value = self.objective(output, self.targets)
        if step < self.redirect_steps:  # a ReLU that has not fired passes no gradient: climb its input
            value = torch.where(value > 0, value, self.objective(pre, self.targets))
        if self.spec.diversity > 1:
            scale = value.detach().abs().view(-1, self.spec.diversity).mean(dim=1).repeat_interleave(self.spec.diversity)
            value = value - DIVERSITY_WEIGHT * scale * similarity_to_group(output, self.spec.diversity)
        return value

    @torch.no_grad()
    def measure(self, pixels: torch.Tensor) -> tuple[list[float], list[bool]]:
        """The objective of each row on ``pixels``, and whether the row's filter is silent there."""
        _, output = self.outputs(pixels)
        silent = [False] * len(pixels)
        if self.spec.objective in ("channel", "neuron"):
            maps = target_maps(output, self.targets)
            silent = (maps.reshape(len(maps), -1).amax(dim=1) <= 0).tolist()
        return self.objective(output, self.targets).tolist(), silent


def _render_rows(
    spec: RenderSpec, layer: LayerInfo, probe: LayerProbe, rows: _Rows, start: torch.Tensor,
    device: torch.device, step_done: Callable[[], None],
) -> tuple[torch.Tensor, list[float], list[float], list[bool], list[list[torch.Tensor]]]:
    """Optimize one chunk: (final pictures (B, H, W, 3) uint8, activations, start activations, dead, frames)."""
    climb = _Climb(spec, layer, probe, torch.tensor(rows.filters, device=device))
    ascent = _ascent(spec, rows, start, device)
    picture = display_transform if spec.method == "classic" else quantize
    start_activations, silent = climb.measure(ascent.image())
    frames = []
    for step in range(spec.steps):
        ascent.step(climb.value(ascent.candidate(), step))
        if spec.snapshots and ((step + 1) % spec.snapshots == 0 or step + 1 == spec.steps):
            frames.append(picture(ascent.image()))
        step_done()
    final = picture(ascent.image())  # (b, H, W, 3) uint8
    as_input = final.permute(0, 3, 1, 2).float().to(device).contiguous(memory_format=torch.channels_last)
    activations, _ = climb.measure(as_input)
    dead = [was_silent and act <= 0 for was_silent, act in zip(silent, activations)]
    per_row_frames = [[frame[row] for frame in frames] for row in range(len(rows))]
    return final, activations, start_activations, dead, per_row_frames


def render(
    spec: RenderSpec,
    *,
    init_image: Image.Image | None = None,
    weights_dir=None,
    device: str = "auto",
    memory_budget_mb: int = 4096,
    on_step: StepCallback | None = None,
) -> RenderResult:
    """Render every requested filter of ``spec``: one PNG each, a grid, and their activations."""
    started = time.perf_counter()
    layer = check_spec(spec)
    target = pick_device(device)
    model = load_model(spec.model, weights_dir, str(target))
    probe = LayerProbe(model, layer.module_path)
    loaded = time.perf_counter()

    rows = _Rows.of(spec)
    chunk = rows_per_chunk(spec, layer, memory_budget_mb)
    total_steps = spec.steps * math.ceil(len(rows) / chunk)
    done = 0

    def step_done() -> None:
        nonlocal done
        done += 1
        if on_step is not None:
            on_step(done, total_steps)

    start = start_pixels(spec, init_image)
    pictures, activations, start_activations, dead, frames = [], [], [], [], []
    for first in range(0, len(rows), chunk):
        part = slice(first, first + chunk)
        chunk_rows = _Rows(rows.filters[part], rows.variants[part])
        outcome = _render_rows(spec, layer, probe, chunk_rows, start[part], target, step_done)
        pictures.append(outcome[0])
        activations += outcome[1]
        start_activations += outcome[2]
        dead += outcome[3]
        frames += outcome[4]
    optimized = time.perf_counter()

    images = torch.cat(pictures)
    results = [
        FilterRender(f, v, encode_png(image), act, start_act, is_dead, encode_animation(row_frames) if row_frames else None)
        for f, v, image, act, start_act, is_dead, row_frames
        in zip(rows.filters, rows.variants, images, activations, start_activations, dead, frames)
    ]
    grid = encode_grid(images, rows.labels(spec))
    finished = time.perf_counter()
    seconds = {"load": loaded - started, "optimize": optimized - loaded, "encode": finished - optimized}
    return RenderResult(layer, results, grid, str(target), {k: round(v, 4) for k, v in seconds.items()})
