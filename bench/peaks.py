"""A machine's arithmetic peak per precision, measured: the best FLOP/s of large square matrix products.

A conv's measured rate is no such peak: oneDNN's Winograd kernels (and cuDNN's) do fewer multiplies
than the 2·k²·C_in·C_out·H·W FLOPs counted for them, so "effective" conv FLOP/s can exceed what the
silicon does. bench.engine and bench.gpu print both, and a rate's fraction of each.
"""

import time
from collections.abc import Callable
from functools import partial

import torch

MATMUL_SIDES = (1024, 2048, 4096)  # large enough to be compute bound; 4096 fp32 is ~0.5 GiB of operands
PEAK_SECONDS = 2.0  # per size: repeat the product within this time (best of the repeats)


def synchronizer(device: torch.device) -> Callable[[], None]:
    """What makes a timer see a device's work done: a CUDA sync on a GPU, nothing on the CPU."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def best_seconds(run: Callable[[], object], device: torch.device, budget: float = PEAK_SECONDS) -> float:
    """The fastest of as many calls as fit in ``budget`` seconds (at least 3), after a warm-up call."""
    sync = synchronizer(device)
    run()
    sync()
    fastest, spent, calls = float("inf"), 0.0, 0
    while calls < 3 or spent < budget:
        started = time.perf_counter()
        run()
        sync()
        took = time.perf_counter() - started
        fastest, spent, calls = min(fastest, took), spent + took, calls + 1
    return fastest


def peak_matmul_flops(
    dtype: torch.dtype, device: torch.device, sides: tuple[int, ...] = MATMUL_SIDES
) -> tuple[float, int]:
    """(best FLOP/s, the side n of the n x n product that reached it) of ``dtype`` matrix products on ``device``."""
    best, best_side = 0.0, 0
    for side in sides:
        a = torch.randn(side, side, dtype=dtype, device=device)
        b = torch.randn(side, side, dtype=dtype, device=device)
        rate = 2 * side**3 / best_seconds(partial(torch.mm, a, b), device)
        if rate > best:
            best, best_side = rate, side
    return best, best_side
