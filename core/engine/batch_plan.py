"""The rows of a batch, one per picture, from one or several requests, and the chunks they run in.

A row carries its own seed, filter and layer, so it never depends on its batch-mates. Rows are
run in chunks: as many as fit the activation-memory budget, and rows of a shallower layer join
a deeper layer's chunk only while that wastes little arithmetic (the forward runs to the deepest
layer of its chunk, and its backward comes back from there).
"""

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from core import job_cost
from core.engine.layers import LayerInfo, layer_costs
from core.job_cost import LayerCost, held_bytes, optimized_size
from core.spec import RenderSpec

# A chunk takes rows of shallower layers along while it costs at most this much more arithmetic
# than stopping each row at its own layer.
MIX_WASTE = 0.10


@dataclass(frozen=True)
class Row:
    request: int  # index of its request in the batch
    filter: int
    variant: int  # 0 .. diversity-1
    seed: int  # the request's
    layer: LayerInfo
    cost: float  # forward FLOPs of one image up to the row's layer

    def generator(self, purpose: str = "") -> torch.Generator:
        return torch.Generator().manual_seed(row_seed(self.seed, self.filter, self.variant, purpose))


def row_seed(seed: int, filter_index: int, variant: int = 0, purpose: str = "") -> int:
    """A seed per (request seed, filter, variant, purpose): a row never depends on its batch-mates."""
    key = f"{seed}:{filter_index}" + (f":{variant}" if variant else "") + (f":{purpose}" if purpose else "")
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1


def request_rows(
    request: int, filters: list[int], diversity: int, seed: int, layer: LayerInfo, cost: float
) -> list[Row]:
    """Each filter ``diversity`` times, in filter order."""
    return [Row(request, f, v, seed, layer, cost) for f in filters for v in range(diversity)]


def plan_chunks(rows: list[Row], diversity: int, capacity: Callable[[LayerInfo], int]) -> list[list[Row]]:
    """Split ``rows`` into chunks, shallow layers first; ``capacity(layer)``: rows that fit to that depth.

    A filter's ``diversity`` pictures stay together (they push each other apart).
    """
    ordered = sorted(rows, key=lambda row: (row.cost, row.layer.name))  # stable: request, filter order kept
    groups = [ordered[i : i + diversity] for i in range(0, len(ordered), diversity)]
    chunks: list[list[Row]] = []
    for group in groups:
        if chunks and _fits(chunks[-1] + group, capacity):
            chunks[-1].extend(group)
        else:
            chunks.append(list(group))
    return chunks


def _fits(chunk: list[Row], capacity: Callable[[LayerInfo], int]) -> bool:
    deepest = chunk[-1]  # rows come sorted by cost
    own_cost = math.fsum(row.cost for row in chunk)
    return len(chunk) <= capacity(deepest.layer) and len(chunk) * deepest.cost <= (1 + MIX_WASTE) * own_cost


def layer_cost(spec: RenderSpec, layer: LayerInfo) -> LayerCost:
    """The layer's cost per image at the size the spec optimizes at (robust pads its views)."""
    size = optimized_size(spec)
    flops, activations = layer_costs(spec.model, size, layer)
    return LayerCost(flops, activations, size)


def rows_per_chunk(spec: RenderSpec, layer: LayerInfo, free_bytes: int) -> int:
    """How many rows fit in one batch in ``free_bytes`` of memory (at least one diversity group)."""
    return job_cost.rows_per_chunk(spec, layer_cost(spec, layer), free_bytes)


def plan_batch(specs: list[RenderSpec], layers: list[LayerInfo], memory_budget_mb: int) -> list[list[Row]]:
    """The rows of a batch of requests (``layers[i]``: request i's), in chunks that fit the memory
    budget beside every request's held results. The requests share everything but their rows."""
    shared = specs[0]
    rows = [
        row
        for index, (spec, layer) in enumerate(zip(specs, layers, strict=True))
        for row in request_rows(
            index, spec.filters or [], shared.diversity, spec.seed, layer, layer_cost(shared, layer).flops
        )
    ]
    free = memory_budget_mb * 2**20 - sum(held_bytes(spec) for spec in specs)
    return plan_chunks(rows, shared.diversity, lambda layer: rows_per_chunk(shared, layer, free))
