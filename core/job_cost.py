"""What a render request costs: arithmetic and memory, estimated from the catalog. Torch-free.

The API refuses at submit what is over a deployment's limits, and the engine plans its chunks
with the same numbers, so a request admitted is one the worker can hold. Per-layer figures come
from the catalog at the catalog's size and scale with the pixels of the size asked for.
"""

import math
from dataclasses import dataclass

from core.spec import RenderSpec

# What the robust method adds to every step (core.engine.optimizers / core.engine.transforms; a test
# holds them equal): its views of each picture per step, and the padding of each view.
ROBUST_VIEWS = 2
ROBUST_PAD = 12
# maco's views are crops the size of the picture (no padding); accentuate's one view a step is a mildly
# padded warp, seen twice: by the objective and by the feature distance to the photo (its own forward and backward).
METHOD_VIEWS = {"classic": 1, "robust": ROBUST_VIEWS, "maco": ROBUST_VIEWS, "accentuate": 2}
METHOD_PAD = {"classic": 0, "robust": ROBUST_PAD, "maco": 0, "accentuate": 4}
# A step is a forward and a backward, which costs about twice the forward.
PASSES_PER_STEP = 3
# Bytes of memory one batch row is budgeted per number of the layers' outputs (activation floats):
# the forward keeps every output for the backward, which makes gradients of the same sizes, plus
# pooling indices. bench/memory.py measured 6.1 (fp32) and 4.1 (bf16) on VGG16; the rest is slack.
BYTES_PER_ACTIVATION = {"fp32": 12, "bf16": 8}
RGB_BYTES = 3


@dataclass(frozen=True)
class LayerCost:
    """One image's forward up to a layer, at ``size``: FLOPs, and the numbers it keeps for the backward."""

    flops: float
    activations: int
    size: tuple[int, int]

    def at(self, size: tuple[int, int]) -> "LayerCost":
        """The same layer at another input size (both scale with the pixels)."""
        scale = size[0] * size[1] / (self.size[0] * self.size[1])
        return LayerCost(self.flops * scale, round(self.activations * scale), size)


def pictures(spec: RenderSpec) -> int:
    """Pictures of the request, over all its layers."""
    return sum(len(part.filters or []) for part in spec.parts()) * spec.diversity


def views(spec: RenderSpec) -> int:
    return METHOD_VIEWS[spec.method]


def optimized_size(spec: RenderSpec) -> tuple[int, int]:
    """The size the model sees while optimizing: robust and accentuate pad every view."""
    pad = METHOD_PAD[spec.method]
    return spec.size[0] + 2 * pad, spec.size[1] + 2 * pad


def work_flops(spec: RenderSpec, layer: LayerCost) -> float:
    """Arithmetic of a single-layer job: every picture's steps and views, plus measuring start and end."""
    per_image = layer.at(optimized_size(spec)).flops
    measure = 2 * layer.at(spec.size).flops
    return pictures(spec) * ((spec.steps or 0) * views(spec) * PASSES_PER_STEP * per_image + measure)


def job_work_flops(spec: RenderSpec, layers: list[LayerCost]) -> float:
    """Arithmetic of the whole job, each layer's pictures through ``layers[i]``, its part's layer. The
    engine runs a shallower layer's rows to a deeper one only where that costs at most 10% more
    (core.engine.batch_plan.MIX_WASTE), so this is within that of what it does."""
    return math.fsum(work_flops(part, layer) for part, layer in zip(spec.parts(), layers, strict=True))


def frame_count(spec: RenderSpec) -> int:
    """Snapshot frames per picture: one every ``snapshots`` steps, and the last step's."""
    return math.ceil((spec.steps or 0) / spec.snapshots) if spec.snapshots else 0


def held_bytes(spec: RenderSpec) -> int:
    """Memory the job's results take until it ends: each picture's pixels and PNG, and its animation
    (a lossless WebP of its frames, counted at their raw size: noise does not compress), plus the
    frames of the one picture being encoded (the others wait on disk)."""
    image = spec.size[0] * spec.size[1] * RGB_BYTES
    return pictures(spec) * image * (2 + frame_count(spec)) + image * frame_count(spec)


def row_bytes(spec: RenderSpec, layer: LayerCost) -> int:
    """Activation memory one batch row needs while optimizing: its views' kept numbers."""
    return views(spec) * layer.at(optimized_size(spec)).activations * BYTES_PER_ACTIVATION[spec.precision]


def rows_per_chunk(spec: RenderSpec, layer: LayerCost, free_bytes: int) -> int:
    """How many rows fit in one batch in ``free_bytes`` (the budget less the held results), at least
    one diversity group."""
    return max(spec.diversity, free_bytes // max(1, row_bytes(spec, layer)))


def memory_bytes(spec: RenderSpec, layers: list[LayerCost]) -> int:
    """The least memory the job can run in, as the engine plans it (core.engine.batch_plan): the held
    results of all its layers' pictures, and one diversity group's activations at the deepest of ``layers``."""
    return held_bytes(spec) + spec.diversity * max(row_bytes(spec, layer) for layer in layers)
