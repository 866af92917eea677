"""Where each render process of a worker runs: one GPU per process, or its share of the CPU cores.

The parent learns its pool size (``--concurrency``) before it forks; each pool process then sets
itself up once, after the fork (torch and CUDA are first touched there, never in the parent), and warms
up (``warm_up``: models loaded, kernels built) so that its first job is not slower than the next. A
:class:`RenderProcess` is made by the app factory, so every pool process inherits its own copy.
"""

import logging
import threading

from billiard.process import current_process

from core.errors import ModelUnavailable
from core.settings import Settings
from core.spec import DEFAULT_SIDE, RenderSpec

log = logging.getLogger(__name__)

WARM_UP_FILTERS = 4
WARM_UP_STEPS = 2
WARM_UP_PATIENCE_SECONDS = 300.0  # the longest a job waits for its process's warm-up


class RenderProcess:
    """This process's place among the worker's render processes, and the device it renders on."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool_size = 1  # render processes of this worker: noted in the parent, inherited by the pool
        self._device: str | None = None  # this pool process's device, once set up
        self._warm = threading.Event()  # set once this process's warm-up is over (or there is none)
        self._warm.set()

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
        # in a thread: worker_process_init must return within Celery's worker_proc_alive_timeout (4 s)
        self._warm.clear()
        threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        try:
            warmed = warm_up(self._settings, self.device)
            log.info("render process warmed up: %s", ", ".join(warmed) or "no model has its weights")
        except Exception:  # a model that cannot render fails its jobs with a proper error; not the process
            log.exception("warm-up failed")
        finally:
            self._warm.set()

    def ready_device(self) -> str:
        """This process's device once its warm-up is over: a job waits for it rather than share the cores with it."""
        self._warm.wait(WARM_UP_PATIENCE_SECONDS)
        return self.device

    @property
    def device(self) -> str:
        """This process's device (cpu, cuda:N); the setting itself before it is set up."""
        return self._device or self._settings.device


def warm_up(settings: Settings, device: str) -> list[str]:
    """Load every served model whose weights are here and render a few filters of its deepest layer at the
    default size for a few steps, so that the first job pays neither the engine's imports, nor the load
    (seconds), nor the kernels' first calls (oneDNN and cuDNN choose and build one per shape). Returns the
    models warmed."""
    from core.engine import list_layers, render, weights_available

    warmed = []
    for model in settings.models:
        if not weights_available(model, settings.weights_dir):
            continue
        try:
            deepest = [layer for layer in list_layers(model, DEFAULT_SIDE) if 0 not in layer.output_shape[1:]][-1]
            filters = list(range(min(WARM_UP_FILTERS, deepest.filters)))
            spec = RenderSpec(model=model, layer=deepest.name, filters=filters, steps=WARM_UP_STEPS)
            render(spec, weights_dir=settings.weights_dir, device=device, memory_budget_mb=settings.memory_budget_mb)
        except ModelUnavailable as error:  # its jobs fail with this error; the models after it still warm up
            log.warning("warm-up skips %s: %s", model, error)
            continue
        warmed.append(model)
    return warmed
