"""Setting up a render process: its device, its share of the CPU cores, its memory allocator.

Called once per process that renders (a worker's pool process after the fork, the CLI, a
benchmark), never in a worker's parent: CUDA must not be initialized before the pool forks.
"""

import ctypes
import ctypes.util
import os

import torch

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_KEEP_FREED_BYTES = 2**31 - 1  # the largest trim threshold mallopt takes (an int)


def tune_allocator() -> bool:
    """Keep freed memory in the process instead of handing it back to the kernel.

    glibc serves every block above 32 MiB with a fresh ``mmap`` and returns it with ``munmap``;
    the render loop allocates activations of that size every step, so each step page-faults its
    way through them again (measured here: out-of-place ReLU 2x slower, a whole VGG16 step 1.3x
    in fp32 and 2x in bf16). With mmap off and trimming off, the heap keeps those pages. The price:
    the process holds on to its peak memory. Returns False where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES))


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def configure_process(threads: int | None = None, processes: int = 1) -> int:
    """Threads, allocator and GPU math modes for this render process; returns its thread count.

    ``threads`` unset: this process's share of the cores, so ``processes`` render processes on one
    machine never oversubscribe it. On a GPU, fp32 convolutions and matmuls use TF32 tensor cores
    (PyTorch's default for convolutions already) and cuDNN picks the fastest algorithm per shape.
    """
    threads = threads or max(1, usable_cores() // max(1, processes))
    torch.set_num_threads(threads)
    tune_allocator()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    return threads


def pick_device(device: str) -> torch.device:
    """The device a render runs on: ``auto`` is the GPU where there is one."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def process_device(device: str, process_index: int = 0) -> str:
    """The device for render process number ``process_index``: one GPU per process, round robin.

    ``device`` is the setting (auto, cpu, cuda); the answer is what ``render`` takes (cpu, cuda:N).
    """
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return "cpu"
    count = torch.cuda.device_count()
    return f"cuda:{process_index % count}" if count else "cuda"
