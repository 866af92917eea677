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

from core.engine.layers import LayerInfo

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
