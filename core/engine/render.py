"""The render loop: batched activation maximization, one batch row per filter.

``method="classic"`` is the seed's algorithm exactly: start from N(127, 10) noise in 0..255 pixel
space (or from a photo), take the gradient of the filter's mean activation, divide it by its
RMS (+1e-5) per row, ``x += step_size * grad``, and show the result with Chollet's display
transform. Rows never interact (eval mode, per-row normalization, per-row seeds), so a filter's
picture does not depend on which other filters shared its batch.
"""

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from core.engine.layers import LayerInfo, list_layers, resolve_layer
from core.engine.models import load_model, model_info
from core.engine.pictures import display_transform, encode_grid, encode_png, image_to_pixels
from core.engine.probe import LayerProbe
from core.errors import FilterOutOfRange, SizeOutOfRange
from core.spec import ImageInit, RenderSpec

StepCallback = Callable[[int, int], None]  # (steps done, steps in all); may raise to abort

# Bytes of activation memory one batch row needs, per float of the layers' outputs: the forward
# keeps every output for the backward, which makes one gradient of the same size again, plus slack.
_BYTES_PER_ACTIVATION = 4 * 3


@dataclass(frozen=True)
class FilterRender:
    filter: int
    png: bytes
    activation: float  # the filter's mean activation on the final 8-bit PNG
    start_activation: float  # ... and on the start image


@dataclass(frozen=True)
class RenderResult:
    layer: LayerInfo
    filters: list[FilterRender]
    grid_png: bytes
    device: str
    seconds: dict[str, float]


def check_spec(spec: RenderSpec) -> LayerInfo:
    """The layer the spec names, once model, layer, filters and size are known to fit together."""
    model_info(spec.model)  # UnknownModel lists the valid ones
    layer = resolve_layer(spec.model, spec.layer, spec.size)
    out_of_range = [f for f in spec.filters if f >= layer.filters]
    if out_of_range:
        raise FilterOutOfRange(
            f"layer {layer.name} of {spec.model} has {layer.filters} filters (0-{layer.filters - 1}); "
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


def row_seed(seed: int, filter_index: int) -> int:
    """A seed per (request seed, filter): a row's noise never depends on its batch-mates."""
    digest = hashlib.sha256(f"{seed}:{filter_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def start_pixels(spec: RenderSpec, init_image: Image.Image | None) -> torch.Tensor:
    """(B, 3, H, W) float32 start pixels on the CPU, one row per requested filter."""
    if isinstance(spec.init, ImageInit):
        if init_image is None:
            raise ValueError("the spec starts from an image, but no init_image was given")
        return image_to_pixels(init_image, spec.size).expand(len(spec.filters), -1, -1, -1).clone()
    rows = []
    for filter_index in spec.filters:
        generator = torch.Generator().manual_seed(row_seed(spec.seed, filter_index))
        noise = torch.randn((3, *spec.size), generator=generator)  # (3, H, W)
        rows.append(noise * spec.init.std + spec.init.mean)
    return torch.stack(rows)


def rows_per_chunk(spec: RenderSpec, layer: LayerInfo, memory_budget_mb: int) -> int:
    """How many filters fit in one batch within the activation-memory budget."""
    floats = 0
    for info in list_layers(spec.model, spec.size):
        floats += math.prod(info.output_shape)
        if info.name == layer.name:
            break
    per_row = max(1, floats * _BYTES_PER_ACTIVATION)
    return max(1, memory_budget_mb * 2**20 // per_row)


def filter_activations(probe: LayerProbe, pixels: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """(B,) mean activation of each row's own filter: the objective of the classic method."""
    output = probe(pixels)  # (B, C, h, w)
    rows = torch.arange(len(filters), device=output.device)
    return output[rows, filters].float().mean(dim=(1, 2))


def _ascend(
    probe: LayerProbe, pixels: torch.Tensor, filters: torch.Tensor, spec: RenderSpec, on_step: Callable[[], None]
) -> torch.Tensor:
    """The seed's gradient ascent on (B, 3, H, W) pixels."""
    for _ in range(spec.steps):
        pixels.requires_grad_(True)
        objective = filter_activations(probe, pixels, filters)
        (grad,) = torch.autograd.grad(objective.sum(), pixels)
        rms = grad.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
        pixels = (pixels + spec.step_size * grad / (rms + 1e-5)).detach()
        on_step()
    return pixels


@torch.no_grad()
def _measure(probe: LayerProbe, pixels: torch.Tensor, filters: torch.Tensor) -> list[float]:
    return filter_activations(probe, pixels, filters).tolist()


def render(
    spec: RenderSpec,
    *,
    init_image: Image.Image | None = None,
    weights_dir: Path | None = None,
    device: str = "auto",
    memory_budget_mb: int = 4096,
    on_step: StepCallback | None = None,
) -> RenderResult:
    """Render every requested filter of ``spec``: one PNG each, a grid, and their activations."""
    started = time.perf_counter()
    layer = check_spec(spec)
    target = pick_device(device)
    model = load_model(spec.model, weights_dir, str(target))
    probe = LayerProbe(model, layer.output_path)
    loaded = time.perf_counter()

    chunk = rows_per_chunk(spec, layer, memory_budget_mb)
    total_steps = spec.steps * math.ceil(len(spec.filters) / chunk)
    done = 0

    def step_done() -> None:
        nonlocal done
        done += 1
        if on_step is not None:
            on_step(done, total_steps)

    start = start_pixels(spec, init_image)
    images, activations, start_activations = [], [], []
    for first in range(0, len(spec.filters), chunk):
        rows = slice(first, first + chunk)
        filters = torch.tensor(spec.filters[rows], device=target)
        pixels = start[rows].to(target).contiguous(memory_format=torch.channels_last)
        final = display_transform(_ascend(probe, pixels, filters, spec, step_done))  # (b, H, W, 3) uint8
        as_input = final.permute(0, 3, 1, 2).float().to(target).contiguous(memory_format=torch.channels_last)
        images.append(final)
        activations += _measure(probe, as_input, filters)
        start_activations += _measure(probe, pixels, filters)
    optimized = time.perf_counter()

    images = torch.cat(images)
    results = [
        FilterRender(f, encode_png(image), act, start_act)
        for f, image, act, start_act in zip(spec.filters, images, activations, start_activations)
    ]
    grid = encode_grid(images, [str(f) for f in spec.filters])
    finished = time.perf_counter()
    seconds = {"load": loaded - started, "optimize": optimized - loaded, "encode": finished - optimized}
    return RenderResult(layer, results, grid, str(target), {k: round(v, 4) for k, v in seconds.items()})
