"""Dataset examples: which images of a set excite each filter of a layer most, and where in them.

Every image goes through the network once, as far as the layer, in batches, every filter at once and
without gradients. An image's score for a filter is its activation's maximum over the layer's positions
(as OpenAI Microscope ranks units), and per filter the k best images are kept with the position of that
maximum (:class:`TopImages`, a stream: memory is k entries per filter whatever the set's size).

Where a position looks is its receptive field, measured here by gradient (:func:`receptive_field`), not
derived from kernels and strides: residual branches, depthwise convolutions, ViT attention and pools of
any kind are then all handled alike. The gradient of one central position's activations with respect to
random inputs is non-zero exactly on that position's theoretical receptive field; the side is doubled until
the field fits inside the input (one that still reaches an edge at MAX_FIELD_SIDE is global: the whole
picture), and other positions' fields are the central one moved by the layer's stride. Deep layers'
theoretical fields are larger than the picture (EfficientNet-Lite0's blocks.4: 339 px) while most of the
gradient is near the middle (the "effective receptive field", Luo et al. 2016), so a crop is the central
span of the field that holds EFFECTIVE_MASS of the gradient's magnitude along each axis.
"""

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from core.engine.features import FeatureExtractor
from core.example_index import ExampleIndex, IndexedExample, png_bytes, sha256_of, thumbnail

MAX_FIELD_SIDE = 1024  # the largest input a receptive field is measured at
FIELD_PROBES = 2  # random inputs whose gradients are combined, so that no dead ReLU hides part of a field
EFFECTIVE_MASS = 0.9  # crops hold the central part of a field where 90 % of the gradient is (per axis)


@dataclass(frozen=True)
class Axis:
    """One axis of a receptive field: position ``i``'s field starts at ``origin + i * stride`` and spans
    ``extent`` pixels; ``extent`` None: every position sees the whole axis."""

    origin: float
    stride: float
    extent: int | None

    def span(self, position: int, length: int) -> tuple[int, int]:
        """[start, stop) of the field of ``position`` on an input of ``length`` pixels, clipped to it."""
        if self.extent is None:
            return 0, length
        start = round(self.origin + position * self.stride)
        return max(0, start), min(length, start + self.extent)


@dataclass(frozen=True)
class ReceptiveField:
    rows: Axis
    columns: Axis

    def box(self, position: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(left, top, right, bottom), right and bottom exclusive, of ``position`` (y, x) on a (H, W) input."""
        top, bottom = self.rows.span(position[0], size[0])
        left, right = self.columns.span(position[1], size[1])
        return left, top, right, bottom

    def as_json(self) -> dict[str, object]:
        return {axis: vars(getattr(self, axis)) for axis in ("rows", "columns")}


@dataclass(frozen=True)
class Example:
    image: int  # its index in the set
    activation: float  # the filter's largest activation over the image's positions
    position: tuple[int, int]  # (y, x) of that largest activation in the layer's output


def _feature_maps(output: torch.Tensor, relu: bool) -> torch.Tensor:
    """(N, C, h, w) from a layer's output; a vector output (N, C) is a 1x1 map."""
    maps = output if output.dim() == 4 else output.reshape(*output.shape[:2], 1, 1)
    return maps.clamp(min=0) if relu else maps


class TopImages:
    """The ``k`` highest-scoring images per filter over a stream of batches; ties keep the earlier image."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._scores: torch.Tensor | None = None  # (C, <=k)
        self._images = torch.empty(0, dtype=torch.long)
        self._positions = torch.empty(0, dtype=torch.long)  # flat index into (h, w)
        self.grid = (0, 0)

    def add(self, maps: torch.Tensor, images: Sequence[int]) -> None:
        """``maps`` (N, C, h, w): a batch's layer output; ``images`` (N): their indices in the set."""
        self.grid = (maps.shape[2], maps.shape[3])
        best, where = maps.flatten(2).float().max(dim=2)  # (N, C) each
        indices = torch.as_tensor(list(images), dtype=torch.long).unsqueeze(1).expand_as(best)
        if self._scores is None:
            scores, chosen, positions = best.T, indices.T, where.T
        else:
            scores = torch.cat([self._scores, best.T], dim=1)
            chosen = torch.cat([self._images, indices.T], dim=1)
            positions = torch.cat([self._positions, where.T], dim=1)
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, : self.k]  # earlier first on ties
        self._scores = scores.gather(1, order)
        self._images, self._positions = chosen.gather(1, order), positions.gather(1, order)

    def examples(self) -> list[list[Example]]:
        """Per filter, its best images, best first."""
        if self._scores is None:
            return []
        width = self.grid[1]
        return [
            [
                Example(int(image), float(score), (int(flat) // width, int(flat) % width))
                for score, image, flat in zip(scores, images, positions, strict=True)
            ]
            for scores, images, positions in zip(self._scores, self._images, self._positions, strict=True)
        ]


def pixels_of(pictures: Sequence[Image.Image], device: str | torch.device) -> torch.Tensor:
    """(N, 3, H, W) 0..255 float pixels of same-sized RGB PIL pictures."""
    stacked = np.stack([np.asarray(picture, dtype=np.uint8) for picture in pictures])  # (N, H, W, 3)
    return torch.from_numpy(stacked).to(device).permute(0, 3, 1, 2).float()


def top_examples(
    model: nn.Sequential, module_path: str, batches: Iterable[tuple[Sequence[int], torch.Tensor]], k: int, relu: bool
) -> TopImages:
    """Run each (image indices, (N, 3, H, W) pixels) batch through ``model`` up to ``module_path`` once,
    keeping the ``k`` best images per filter."""
    extractor = FeatureExtractor(model, [module_path])
    top = TopImages(k)
    with torch.inference_mode():
        for images, pixels in batches:
            (output,) = extractor(pixels)
            top.add(_feature_maps(output, relu), images)
    return top


def receptive_field(
    model: nn.Sequential, module_path: str, side: int, device: str | torch.device, mass: float = EFFECTIVE_MASS
) -> ReceptiveField:
    """The receptive field of the layer's positions, measured by gradient (see the module's docstring): per
    axis, the central span that holds ``mass`` of the gradient's magnitude (1.0: the whole theoretical field)."""
    extractor = FeatureExtractor(model, [module_path])
    generator = torch.Generator().manual_seed(0)
    while True:
        pixels = (torch.rand(FIELD_PROBES, 3, side, side, generator=generator) * 255).to(device).requires_grad_(True)
        with torch.enable_grad():
            (output,) = extractor(pixels)
            maps = _feature_maps(output, relu=False)
            height, width = maps.shape[2:]
            center = (height // 2, width // 2)
            maps[:, :, center[0], center[1]].abs().sum().backward()
        assert pixels.grad is not None
        weight = pixels.grad.abs().sum(dim=(0, 1)).double().cpu()  # (side, side)
        rows, columns = weight.sum(dim=1), weight.sum(dim=0)
        touches = _touches(rows) or _touches(columns)
        if not touches or side >= MAX_FIELD_SIDE:
            return ReceptiveField(
                _axis(rows, height, center[0], mass, touches), _axis(columns, width, center[1], mass, touches)
            )
        side = min(2 * side, MAX_FIELD_SIDE)


def _touches(weight: torch.Tensor) -> bool:
    """The field reaches an edge of the input (or is nowhere): measure again on a larger one."""
    return not bool(weight.any()) or bool(weight[0] > 0) or bool(weight[-1] > 0)


def _axis(weight: torch.Tensor, positions: int, center: int, mass: float, global_field: bool) -> Axis:
    """The span of ``weight`` (the gradient's magnitude along one axis) between its (1 - mass) / 2 and
    (1 + mass) / 2 quantiles, as the field of every position."""
    stride = len(weight) / positions
    if global_field or not bool(weight.any()):
        return Axis(0.0, stride, None)
    cumulative = weight.cumsum(0) / weight.sum()
    lower = (1 - mass) / 2
    start = int((cumulative > lower).nonzero()[0])
    stop = int((cumulative >= 1 - lower - 1e-9).nonzero()[0]) + 1
    return Axis(start - center * stride, stride, stop - start)


@dataclass(frozen=True)
class IndexRequest:
    """What an examples index is of, besides its images."""

    model: str
    weights: str  # the weight file's identity
    layer: str  # the catalog's name
    module_path: str
    relu: bool  # the layer is seen after a ReLU (LayerInfo.relu)
    dataset: str
    fingerprint: str  # the image set's content
    k: int
    side: int
    batch_size: int


def build_example_index(
    model: nn.Sequential,
    request: IndexRequest,
    names: Sequence[str],
    load_view: Callable[[int], Image.Image],
    device: str | torch.device,
) -> tuple[ExampleIndex, dict[str, bytes]]:
    """The index of ``names`` (``load_view(i)``: the i-th image's square view at ``request.side``), and the
    PNGs it names, by SHA-256. Each image is loaded for the one forward pass and again only if it is an example."""
    started = time.monotonic()
    field = receptive_field(model, request.module_path, request.side, device)
    passes = 0

    def batches() -> Iterator[tuple[Sequence[int], torch.Tensor]]:
        nonlocal passes
        for first in range(0, len(names), request.batch_size):
            indices = range(first, min(first + request.batch_size, len(names)))
            passes += 1
            yield indices, pixels_of([load_view(i) for i in indices], device)

    top = top_examples(model, request.module_path, batches(), request.k, request.relu)
    ranked = top.examples()
    views = {image: load_view(image) for image in sorted({e.image for examples in ranked for e in examples})}
    pictures: dict[str, bytes] = {}

    def keep(picture: Image.Image) -> str:
        data = png_bytes(picture)
        sha256 = sha256_of(data)
        pictures[sha256] = data
        return sha256

    size = (request.side, request.side)
    thumbnails = {image: keep(thumbnail(view)) for image, view in views.items()}
    filters = [
        [
            IndexedExample(
                image=e.image,
                activation=e.activation,
                position=e.position,
                box=(box := field.box(e.position, size)),
                crop=keep(views[e.image].crop(box)),
            )
            for e in examples
        ]
        for examples in ranked
    ]
    index = ExampleIndex(
        model=request.model,
        weights=request.weights,
        layer=request.layer,
        dataset=request.dataset,
        fingerprint=request.fingerprint,
        k=request.k,
        side=request.side,
        grid=top.grid,
        receptive_field=field.as_json(),  # type: ignore[arg-type]
        images=list(names),
        thumbnails=thumbnails,
        filters=filters,
        seconds=round(time.monotonic() - started, 3),
        forward_passes=passes,
    )
    return index, pictures
