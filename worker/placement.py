"""Where each render process of a worker runs: one GPU per process, or its share of the CPU cores.

The parent learns its pool size (``--concurrency``) before it forks; each pool process then sets
itself up once, after the fork (torch and CUDA are first touched there, never in the parent). A
:class:`RenderProcess` is made by the app factory, so every pool process inherits its own copy.
"""

import logging

from billiard.process import current_process

from core.settings import Settings

log = logging.getLogger(__name__)


class RenderProcess:
    """This process's place among the worker's render processes, and the device it renders on."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool_size = 1  # render processes of this worker: noted in the parent, inherited by the pool
        self._device: str | None = None  # this pool process's device, once set up

    def note_pool_size(self, options: dict, **_: object) -> None:
        """celeryd_init (parent): the number of pool processes the worker was started with."""
        self._pool_size = int(options.get("concurrency") or 1)

    def set_up(self, **_: object) -> None:
        """worker_process_init (pool process): threads, allocator, and this process's own GPU."""
        from core.engine.runtime import configure_process, process_device

        index = getattr(current_process(), "index", 0)
        threads = configure_process(self._settings.torch_threads, self._pool_size)
        self._device = process_device(self._settings.device, index)
        log.info("render process %d of %d: %s, %d threads", index + 1, self._pool_size, self._device, threads)

    @property
    def device(self) -> str:
        """This process's device (cpu, cuda:N); the setting itself before it is set up."""
        return self._device or self._settings.device
