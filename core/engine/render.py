"""The render loop: batched activation maximization, one batch row per picture.

``method="classic"`` is the seed's algorithm exactly: start from N(127, 10) noise in 0..255 pixel
space (or from a photo), take the gradient of the filter's mean activation, divide it by its RMS
(+1e-5) per row, ``x += step_size * grad``, and show the result with Chollet's display transform.
``method="robust"`` optimizes a decorrelated Fourier image with Adam through random warps and
shows the image as it is. Rows never interact (eval mode, per-row normalization, Adam's
per-element updates, per-row seeds and warps), so a filter's picture does not depend on which
other filters, or which other requests, shared its batch — except with ``diversity``, whose
pictures of one filter push each other apart and so always share a batch.

``render_batch`` renders several requests that share a batch key (core.batching) as one batch,
each row on its own layer; ``render`` is one request, with its contact sheet.
"""

import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from functools import partial

import torch
from PIL import Image
from torch import nn

from core import job_cost
from core.batching import batch_key
from core.engine.batch_plan import Row, plan_chunks, request_rows, row_seed
from core.engine.climb import Climb
from core.engine.codec import FrameSpool, display_transform, encode_png, image_to_pixels, quantize
from core.engine.layers import LayerInfo, layer_costs, resolve_layer
from core.engine.models import load_model, model_info
from core.engine.optimizers import ClassicAscent, RobustAscent
from core.engine.parameterizations import FourierImage
from core.errors import FilterOutOfRange, SizeOutOfRange
from core.grid import encode_grid, grid_labels
from core.job_cost import LayerCost, held_bytes, optimized_size
from core.spec import ImageInit, RenderSpec

StepCallback = Callable[[int, int], None]  # (steps done, steps in all); may raise to abort
# Called after every step with {request: (steps done, steps in all)} of each unfinished request;
# returns the requests to stop (their rows leave the batch); may raise to abort the whole batch.
BatchCallback = Callable[[dict[int, tuple[int, int]]], Collection[int]]

@dataclass(frozen=True)
class FilterRender:
    filter: int
    variant: int  # 0 .. diversity-1
    png: bytes
    activation: float  # the objective on the final 8-bit PNG, in fp32 (channel: the filter's mean activation)
    start_activation: float  # ... and on the start image
    dead: bool  # never fired: silent on the start image and still <= 0 on the final PNG
    animation: bytes | None  # animated WebP of the snapshots, when asked for


@dataclass(frozen=True)
class RequestResult:
    layer: LayerInfo
    filters: list[FilterRender]
    device: str
    seconds: dict[str, float]


@dataclass(frozen=True)
class RenderResult(RequestResult):
    grid_png: bytes


@dataclass(frozen=True)
class RenderRequest:
    spec: RenderSpec
    init_image: Image.Image | None = None  # for init type "image"


@dataclass(frozen=True)
class _Picture:
    """One row's outcome."""

    row: Row
    image: torch.Tensor  # (H, W, 3) uint8
    activation: float
    start_activation: float
    dead: bool


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


def _photo(spec: RenderSpec, init_image: Image.Image | None) -> torch.Tensor | None:
    """(3, H, W) start pixels of a request that starts from an image; None for noise."""
    if not isinstance(spec.init, ImageInit):
        return None
    if init_image is None:
        raise ValueError("the spec starts from an image, but no init_image was given")
    return image_to_pixels(init_image, spec.size)


def _start(spec: RenderSpec, filter_index: int, variant: int, photo: torch.Tensor | None) -> torch.Tensor:
    """(3, H, W) float32 classic start pixels of one row, on the CPU: the photo, or the row's own noise."""
    if photo is not None:
        return photo
    generator = torch.Generator().manual_seed(row_seed(spec.seed, filter_index, variant))
    return torch.randn((3, *spec.size), generator=generator) * spec.init.std + spec.init.mean


def start_pixels(spec: RenderSpec, init_image: Image.Image | None) -> torch.Tensor:
    """(B, 3, H, W) float32 start pixels of the classic method, on the CPU, one row per picture."""
    photo = _photo(spec, init_image)
    return torch.stack([_start(spec, f, v, photo) for f in spec.filters for v in range(spec.diversity)])


def layer_cost(spec: RenderSpec, layer: LayerInfo) -> LayerCost:
    """The layer's cost per image at the size the spec optimizes at (robust pads its views)."""
    size = optimized_size(spec)
    flops, activations = layer_costs(spec.model, size, layer)
    return LayerCost(flops, activations, size)


def rows_per_chunk(spec: RenderSpec, layer: LayerInfo, free_bytes: int) -> int:
    """How many rows fit in one batch in ``free_bytes`` of memory (at least one diversity group)."""
    return job_cost.rows_per_chunk(spec, layer_cost(spec, layer), free_bytes)


def _ascent(spec: RenderSpec, rows: list[Row], start: torch.Tensor, device: torch.device):
    """The optimizer of the spec's method, set up on ``rows`` from classic start pixels ``start``."""
    strength = spec.init.strength if isinstance(spec.init, ImageInit) else 1.0
    if spec.method == "classic":
        return ClassicAscent(start.to(device).contiguous(memory_format=torch.channels_last), spec.step_size * strength)
    if isinstance(spec.init, ImageInit):
        image = FourierImage.from_pixels(start.to(device))
    else:
        image = FourierImage.from_noise([row.generator() for row in rows], spec.size).to(device)
    views = [[row.generator(f"warp{view}" if view else "warp") for view in range(RobustAscent.VIEWS)] for row in rows]
    return RobustAscent(image, spec.step_size * strength, views)


def _climb_chunk(
    spec: RenderSpec, rows: list[Row], start: torch.Tensor, model: nn.Sequential, device: torch.device,
    after_step: Callable[[], Collection[int]], spool: FrameSpool,
) -> list[_Picture]:
    """Optimize one chunk; ``after_step()`` names the stopped requests, whose rows leave at once.
    Snapshot frames go to ``spool`` as they are taken."""
    climb = Climb(spec, rows, model, device)
    ascent = _ascent(spec, rows, start, device)
    picture = display_transform if spec.method == "classic" else quantize
    start_activations, silent = climb.measure(ascent.image())
    for step in range(spec.steps):
        ascent.step(climb.value(ascent.candidate(), step))
        if spec.snapshots and ((step + 1) % spec.snapshots == 0 or step + 1 == spec.steps):
            spool.add(rows, picture(ascent.image()))
        stopped = after_step()
        keep = [index for index, row in enumerate(rows) if row.request not in stopped]
        if not keep:
            return []
        if len(keep) < len(rows):
            ascent.keep(torch.tensor(keep, device=device))
            rows = [rows[index] for index in keep]
            climb = Climb(spec, rows, model, device)
            start_activations = [start_activations[index] for index in keep]
            silent = [silent[index] for index in keep]
    final = picture(ascent.image())  # (b, H, W, 3) uint8
    as_input = final.permute(0, 3, 1, 2).float().to(device).contiguous(memory_format=torch.channels_last)
    activations, _ = climb.measure(as_input)
    return [
        _Picture(row, final[i], activations[i], start_activations[i], silent[i] and activations[i] <= 0)
        for i, row in enumerate(rows)
    ]


class _Progress:
    """Steps done and in all per request (steps times the chunks its rows fill)."""

    def __init__(self, steps: int, chunks: list[list[Row]]) -> None:
        self.total: Counter[int] = Counter()
        self.done: Counter[int] = Counter()
        self.last_chunk: dict[int, int] = {}
        self.chunks_of: dict[int, list[int]] = {}
        for number, chunk in enumerate(chunks):
            for request in dict.fromkeys(row.request for row in chunk):
                self.total[request] += steps
                self.last_chunk[request] = number
                self.chunks_of.setdefault(request, []).append(number)

    def ending_with(self, number: int) -> list[int]:
        return [request for request, last in self.last_chunk.items() if last == number]


def _result(
    pictures: list[_Picture], spool: FrameSpool, layer: LayerInfo, device: torch.device, seconds: dict[str, float]
) -> RequestResult:
    """A finished request's PNGs and animations, encoded one picture at a time."""
    started = time.perf_counter()
    pictures = sorted(pictures, key=lambda p: (p.row.filter, p.row.variant))
    filters = [
        FilterRender(p.row.filter, p.row.variant, encode_png(p.image), p.activation, p.start_activation, p.dead,
                     spool.animation(p.row))
        for p in pictures
    ]  # fmt: skip
    seconds = {**seconds, "encode": time.perf_counter() - started}
    return RequestResult(layer, filters, str(device), {k: round(v, 4) for k, v in seconds.items()})


def _plan(requests: list[RenderRequest], layers: list[LayerInfo], memory_budget_mb: int) -> list[list[Row]]:
    """The batch's rows in chunks that fit the memory budget beside every request's held results."""
    spec = requests[0].spec
    rows = [
        row
        for index, (request, layer) in enumerate(zip(requests, layers))
        for row in request_rows(index, request.spec.filters, spec.diversity, request.spec.seed, layer,
                                layer_cost(spec, layer).flops)
    ]  # fmt: skip
    free = memory_budget_mb * 2**20 - sum(held_bytes(request.spec) for request in requests)
    return plan_chunks(rows, spec.diversity, lambda layer: rows_per_chunk(spec, layer, free))


def render_batch(
    requests: list[RenderRequest],
    *,
    weights_dir=None,
    device: str = "auto",
    memory_budget_mb: int = 4096,
    on_step: BatchCallback | None = None,
) -> Iterator[tuple[int, RequestResult]]:
    """Render requests of one batch key together; yields (request index, result) as each completes.

    Rows run in chunks (core.engine.batch_plan); a request is done after its last chunk, so small ones may
    finish before a big batch-mate. A request stopped by ``on_step`` yields nothing.
    """
    started = time.perf_counter()
    if len({batch_key(request.spec) for request in requests}) > 1:
        raise ValueError("these requests cannot share a batch: their batch keys differ")
    spec = requests[0].spec  # what they all share
    layers = [check_spec(request.spec) for request in requests]
    target = pick_device(device)
    model = load_model(spec.model, weights_dir, str(target))
    photos = [_photo(request.spec, request.init_image) for request in requests]
    chunks = _plan(requests, layers, memory_budget_mb)
    progress = _Progress(spec.steps, chunks)
    load_seconds = time.perf_counter() - started
    stopped: set[int] = set()
    yielded: set[int] = set()

    def after_step(chunk_requests: Collection[int]) -> Collection[int]:
        for request in chunk_requests:
            progress.done[request] += 1
        if on_step is not None:
            ended = stopped | yielded
            unfinished = {r: (progress.done[r], total) for r, total in progress.total.items() if r not in ended}
            stopped.update(on_step(unfinished))
        return stopped

    pictures: dict[int, list[_Picture]] = {}
    chunk_seconds: list[float] = []
    with FrameSpool() as spool:
        for number, chunk in enumerate(chunks):
            chunk_started = time.perf_counter()
            live = [row for row in chunk if row.request not in stopped]
            if live:
                start = torch.stack([_start(requests[r.request].spec, r.filter, r.variant, photos[r.request])
                                     for r in live])  # fmt: skip
                chunk_step = partial(after_step, {row.request for row in live})
                for picture in _climb_chunk(spec, live, start, model, target, chunk_step, spool):
                    pictures.setdefault(picture.row.request, []).append(picture)
            chunk_seconds.append(time.perf_counter() - chunk_started)
            for request in progress.ending_with(number):
                if request in stopped:
                    pictures.pop(request, None)
                    continue
                optimize = math.fsum(chunk_seconds[n] for n in progress.chunks_of[request])
                yielded.add(request)
                yield request, _result(pictures.pop(request), spool, layers[request], target,
                                       {"load": load_seconds, "optimize": optimize})


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

    def report(progress: dict[int, tuple[int, int]]) -> Collection[int]:
        if on_step is not None:
            on_step(*progress[0])
        return ()

    batch = render_batch([RenderRequest(spec, init_image)], weights_dir=weights_dir, device=device,
                         memory_budget_mb=memory_budget_mb, on_step=report)  # fmt: skip
    ((_, result),) = list(batch)
    started = time.perf_counter()
    labels = grid_labels(spec, [(item.filter, item.variant) for item in result.filters])
    grid = encode_grid([item.png for item in result.filters], labels)
    seconds = {**result.seconds, "encode": round(result.seconds["encode"] + time.perf_counter() - started, 4)}
    return RenderResult(result.layer, result.filters, result.device, seconds, grid)
