"""Which queued jobs could share one batch, and where a worker finds them. Torch-free.

Jobs share a batch when everything but their filters, layer, seed and start image agrees: the
rows of a batch then run the same loop for the same number of steps (Triton's dynamic batching,
for render jobs). The job store files every new job under its batch key (core.store.pending).
"""

import hashlib
import json

from core.job_cost import pictures
from core.spec import ImageInit, RenderSpec


def batch_key(spec: RenderSpec) -> str:
    """Equal for specs whose rows may share a batch (layers may differ: the forward runs to the deepest)."""
    strength = spec.init.strength if isinstance(spec.init, ImageInit) else None
    loop = [spec.method, spec.precision, spec.objective, spec.steps, spec.step_size, spec.diversity, spec.snapshots]
    shared = [spec.model, list(spec.size), *loop, spec.init.type, strength]
    return hashlib.sha256(json.dumps(shared).encode()).hexdigest()[:32]


def batch_rows(spec: RenderSpec) -> int:
    """Batch rows the job needs at most, over all its layers (cached pictures need none)."""
    return pictures(spec)
