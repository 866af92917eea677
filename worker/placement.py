"""Where each render process of a worker runs: one GPU per process, or its share of the CPU cores.

The parent learns its pool size (``--concurrency``) before it forks; each pool process then sets
itself up once, after the fork (torch and CUDA are first touched there, never in the parent).
"""

import logging

from billiard.process import current_process

from core.settings import Settings

log = logging.getLogger(__name__)

_processes = 1  # render processes of this worker; set in the parent, inherited by the pool
_device: str | None = None  # this pool process's device, once set up


def note_pool_size(options: dict, **_: object) -> None:
    """celeryd_init (parent): the number of pool processes the worker was started with."""
    global _processes
    _processes = int(options.get("concurrency") or 1)


def set_up_render_process(settings: Settings) -> None:
    """worker_process_init (pool process): threads, allocator, and this process's own GPU."""
    from core.engine.runtime import configure_process, process_device

    global _device
    index = getattr(current_process(), "index", 0)
    threads = configure_process(settings.torch_threads, _processes)
    _device = process_device(settings.device, index)
    log.info("render process %d of %d: %s, %d threads", index + 1, _processes, _device, threads)


def render_device(settings: Settings) -> str:
    """This process's device (cpu, cuda:N); the setting itself where no pool set one up (a test calling run_job)."""
    return _device or settings.device
