"""The render loop: batched activation maximization, one batch row per picture.

``method="classic"`` is the seed's algorithm exactly: start from N(127, 10) noise in 0..255 pixel
space (or from a photo), take the gradient of the filter's mean activation, divide it by its RMS
(+1e-5) per row, ``x += step_size * grad``, and show the result with Chollet's display transform.
``method="robust"`` optimizes a decorrelated Fourier image with Adam through random warps and
shows the image as it is. Rows never interact (eval mode, per-row normalization, Adam's
per-element updates, per-row seeds and warps), so a filter's picture does not depend on which
other filters, or which other requests, shared its batch — except with ``diversity``, whose
pictures of one filter push each other apart and so always share a batch.

``render_batch`` renders several requests as one batch, each row on its own layer. The requests
share every setting but their filters, layer, seed and start image (what core.batching.batch_key
leaves out; the worker only gathers such requests): the loop takes those settings from the first.
Its callbacks, both optional, are called after every step, in this order:

- ``on_progress(progress)``: a :class:`Progress`, ``{request index: (steps done, steps in all)}`` of
  each request still rendering (steps in all: its steps times the chunks its rows fill), whose
  ``pictures(request)`` gives that request's current pictures in the chunk being optimized, made
  only when asked (live previews). It reports only; it may raise to abort the whole batch.
- ``should_stop()``: the request indexes to stop now. Their rows leave the batch at once and a
  stopped request yields nothing; the other rows go on exactly as they would have.

``render`` is one request, with its contact sheet; its ``on_progress(steps done, steps in all)``
reports likewise.

In order: plan the rows into chunks (core.engine.batch_plan); per chunk, set up its objective
(core.engine.objectives) and optimizer (core.engine.optimizers), climb step by step (snapshots
to a spool, progress, stops), measure the final 8-bit pictures; a request whose last chunk is
done is encoded (core.engine.codec) and yielded.
"""

import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from core.engine.attribution import transparency_alpha
from core.engine.batch_plan import Row, plan_batch
from core.engine.codec import FrameSpool, display_transform, encode_png, quantize
from core.engine.layers import LayerInfo, check_spec
from core.engine.models import load_model
from core.engine.objectives import ChunkObjective
from core.engine.optimizers import optimizer_for
from core.engine.parameterizations import photo_pixels, row_start
from core.engine.runtime import pick_device
from core.grid import encode_grid, grid_labels
from core.pictures import Picture
from core.spec import RenderSpec

StopQuestion = Callable[[], Collection[int]]


@dataclass(frozen=True)
class CurrentPicture:
    """A row's picture as it is now, mid-optimization, shown as its final picture would be."""

    filter: int
    variant: int
    pixels: torch.Tensor  # (H, W, 3) uint8, on the CPU


class Progress(dict[int, tuple[int, int]]):
    """Request index -> (steps done, steps in all); and, only when asked, the current pictures."""

    def __init__(self, steps: dict[int, tuple[int, int]], rows: list[Row], shown: Callable[[], torch.Tensor]) -> None:
        super().__init__(steps)
        self._rows, self._shown = rows, shown
        self._pixels: torch.Tensor | None = None

    def pictures(self, request: int) -> list[CurrentPicture]:
        """``request``'s rows in the chunk being optimized, as pictures now (none where it has no rows in it).

        The chunk's parameterization becomes pixels at the first ask of a step, without gradients, once
        for every request that asks: a step nobody asks about pays nothing.
        """
        indexes = [i for i, row in enumerate(self._rows) if row.request == request]
        if not indexes:
            return []
        if self._pixels is None:
            with torch.no_grad():
                self._pixels = self._shown()
        return [CurrentPicture(self._rows[i].filter, self._rows[i].variant, self._pixels[i]) for i in indexes]


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class RenderRequest:
    spec: RenderSpec
    init_image: Image.Image | None = None  # for init type "image"


@dataclass(frozen=True)
class RequestResult:
    layer: LayerInfo
    pictures: list[Picture]  # in (filter, variant) order, each with its PNG (and WebP)
    device: str
    seconds: dict[str, float]


@dataclass(frozen=True)
class RenderResult(RequestResult):
    grid_png: bytes


@dataclass(frozen=True)
class _UnencodedPicture:
    """A row's final pixels and what they do, until its request is encoded."""

    row: Row
    pixels: torch.Tensor  # (H, W, 3) uint8
    activation: float
    start_activation: float
    dead: bool
    alpha: torch.Tensor | None = None  # (H, W) uint8: the transparency map, for methods with gradients to show

    def encoded(self, webp: bytes | None, transparent: bool) -> Picture:
        return Picture(
            filter=self.row.filter,
            variant=self.row.variant,
            activation=self.activation,
            start_activation=self.start_activation,
            dead=self.dead,
            animation=webp is not None,
            png=encode_png(self.pixels, self.alpha if transparent else None),
            webp=webp,
        )


def render_batch(
    requests: list[RenderRequest],
    *,
    weights_dir: Path | None = None,
    device: str = "auto",
    memory_budget_mb: int = 4096,
    on_progress: ProgressCallback | None = None,
    should_stop: StopQuestion | None = None,
) -> Iterator[tuple[int, RequestResult]]:
    """Render requests of one batch together; yields (request index, result) as each completes.

    Rows run in chunks (core.engine.batch_plan); a request is done after its last chunk, so small
    ones may finish before a big batch-mate. The callbacks: see the module's docstring.
    """
    started = time.perf_counter()
    spec = requests[0].spec  # what they all share
    layers = [check_spec(request.spec) for request in requests]
    target = pick_device(device)
    model = load_model(spec.model, weights_dir, str(target))
    photos = [photo_pixels(request.spec, request.init_image) for request in requests]
    chunks = plan_batch([request.spec for request in requests], layers, memory_budget_mb)
    batch = _Batch(spec.steps or 0, chunks, on_progress, should_stop)
    load_seconds = time.perf_counter() - started
    with FrameSpool() as spool:
        for number, chunk in enumerate(chunks):
            chunk_started = time.perf_counter()
            rows = [row for row in chunk if row.request not in batch.stopped]
            if rows:
                start = torch.stack(
                    [row_start(requests[r.request].spec, r.filter, r.variant, photos[r.request]) for r in rows]
                )
                after_step = partial(batch.after_step, {row.request for row in rows})
                batch.add(_render_chunk(spec, rows, start, model, target, spool, after_step))
            batch.chunk_took(time.perf_counter() - chunk_started)
            for request, pictures, optimize in batch.finished_with(number):
                seconds = {"load": load_seconds, "optimize": optimize}
                transparent = requests[request].spec.transparency
                yield request, _result(pictures, spool, layers[request], target, seconds, transparent)


def _render_chunk(
    spec: RenderSpec,
    rows: list[Row],
    start: torch.Tensor,
    model: nn.Sequential,
    device: torch.device,
    spool: FrameSpool,
    after_step: Callable[[list[Row], Callable[[], torch.Tensor]], Collection[int]],
) -> list[_UnencodedPicture]:
    """Optimize one chunk; ``after_step(rows, shown)`` names the stopped requests, whose rows leave at once
    (``shown()``: the rows' current pictures, for whoever asks).
    Snapshot frames go to ``spool`` as they are taken."""
    objective = ChunkObjective(spec, rows, model, device)
    optimizer = optimizer_for(spec, rows, start, device, model)
    shown = display_transform if spec.method == "classic" else quantize
    start_activations, silent = objective.measure(optimizer.image())
    steps = spec.steps or 0
    for step in range(steps):
        optimizer.step(objective(optimizer.candidate(), step))
        if spec.snapshots and ((step + 1) % spec.snapshots == 0 or step + 1 == steps):
            spool.add(rows, shown(optimizer.image()))
        stopped = after_step(rows, lambda: shown(optimizer.image()))
        keep = [index for index, row in enumerate(rows) if row.request not in stopped]
        if not keep:
            return []
        if len(keep) < len(rows):
            optimizer.keep(torch.tensor(keep, device=device))
            rows = [rows[index] for index in keep]
            objective = ChunkObjective(spec, rows, model, device)
            start_activations = [start_activations[index] for index in keep]
            silent = [silent[index] for index in keep]
    final = shown(optimizer.image())  # (b, H, W, 3) uint8
    as_input = final.permute(0, 3, 1, 2).float().to(device).contiguous(memory_format=torch.channels_last)
    activations, _ = objective.measure(as_input)  # on the RGB picture, whatever its alpha
    attribution = optimizer.attribution()
    alphas = [None] * len(rows) if attribution is None else list(transparency_alpha(attribution))
    return [
        _UnencodedPicture(
            row, final[i], activations[i], start_activations[i], silent[i] and activations[i] <= 0, alphas[i]
        )
        for i, row in enumerate(rows)
    ]


def _result(
    pictures: list[_UnencodedPicture],
    spool: FrameSpool,
    layer: LayerInfo,
    device: torch.device,
    seconds: dict[str, float],
    transparent: bool,
) -> RequestResult:
    """A finished request's PNGs (RGBA where ``transparent``) and animations, encoded one picture at a time."""
    started = time.perf_counter()
    ordered = sorted(pictures, key=lambda p: (p.row.filter, p.row.variant))
    encoded = [picture.encoded(spool.animation(picture.row), transparent) for picture in ordered]
    seconds = {**seconds, "encode": time.perf_counter() - started}
    return RequestResult(layer, encoded, str(device), {k: round(v, 4) for k, v in seconds.items()})


class _Batch:
    """One render_batch's bookkeeping: each request's steps, its stop, its rendered pictures and time."""

    def __init__(
        self,
        steps: int,
        chunks: list[list[Row]],
        on_progress: ProgressCallback | None,
        should_stop: StopQuestion | None,
    ) -> None:
        self._on_progress, self._should_stop = on_progress, should_stop
        self._total: Counter[int] = Counter()  # steps in all: steps times the chunks its rows fill
        self._done: Counter[int] = Counter()
        self._chunks_of: dict[int, list[int]] = {}  # request -> the chunks its rows fill
        for number, chunk in enumerate(chunks):
            for request in dict.fromkeys(row.request for row in chunk):
                self._total[request] += steps
                self._chunks_of.setdefault(request, []).append(number)
        self.stopped: set[int] = set()
        self._yielded: set[int] = set()
        self._pictures: dict[int, list[_UnencodedPicture]] = {}
        self._chunk_seconds: list[float] = []

    def after_step(self, requests: Collection[int], rows: list[Row], shown: Callable[[], torch.Tensor]) -> set[int]:
        """A step of ``requests`` (the chunk's ``rows``) is done: report progress, ask for stops; the stopped
        requests."""
        for request in requests:
            self._done[request] += 1
        ended = self.stopped | self._yielded
        if self._on_progress is not None:
            steps = {r: (self._done[r], total) for r, total in self._total.items() if r not in ended}
            self._on_progress(Progress(steps, rows, shown))
        if self._should_stop is not None:
            self.stopped.update(self._should_stop())
        return self.stopped

    def add(self, pictures: list[_UnencodedPicture]) -> None:
        for picture in pictures:
            self._pictures.setdefault(picture.row.request, []).append(picture)

    def chunk_took(self, seconds: float) -> None:
        self._chunk_seconds.append(seconds)

    def finished_with(self, number: int) -> Iterator[tuple[int, list[_UnencodedPicture], float]]:
        """(request, its pictures, seconds its chunks took) of each unstopped request whose last chunk
        is ``number``; a stopped one's pictures are dropped."""
        for request, chunks in self._chunks_of.items():
            if chunks[-1] != number:
                continue
            pictures = self._pictures.pop(request, [])
            if request not in self.stopped:
                self._yielded.add(request)
                yield request, pictures, math.fsum(self._chunk_seconds[n] for n in chunks)


def render(
    spec: RenderSpec,
    *,
    init_image: Image.Image | None = None,
    weights_dir: Path | None = None,
    device: str = "auto",
    memory_budget_mb: int = 4096,
    on_progress: Callable[[int, int], None] | None = None,
) -> RenderResult:
    """Render every requested filter of ``spec``: one PNG each, a grid, and their activations."""

    def report(progress: Progress) -> None:
        if on_progress is not None:
            on_progress(*progress[0])

    batch = render_batch(
        [RenderRequest(spec, init_image)],
        weights_dir=weights_dir,
        device=device,
        memory_budget_mb=memory_budget_mb,
        on_progress=report,
    )
    ((_, result),) = list(batch)
    started = time.perf_counter()
    labels = grid_labels(spec, [picture.key for picture in result.pictures])
    grid = encode_grid([_png(picture) for picture in result.pictures], labels)
    seconds = {**result.seconds, "encode": round(result.seconds["encode"] + time.perf_counter() - started, 4)}
    return RenderResult(result.layer, result.pictures, result.device, seconds, grid)


def _png(picture: Picture) -> bytes:
    assert picture.png is not None, "the engine's pictures carry their PNG"
    return picture.png
