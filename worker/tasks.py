"""The Celery tasks. They carry ids and names only; everything else is in Redis."""

from functools import cache, partial

from celery import Celery, Task

from core.queues import DESCRIBE_TASK, EXAMPLES_TASK, RENDER_QUEUE, RENDER_TASK
from core.settings import Settings
from core.store import Stores
from worker.catalog import describe_layers
from worker.examples import build_examples
from worker.placement import RenderProcess
from worker.run import run_job


def register_tasks(app: Celery, settings: Settings, process: RenderProcess) -> None:
    """Register the render and describe tasks on ``app``, bound to this worker's settings and render process."""
    stores = cache(partial(Stores.from_settings, settings))  # opened once per pool process, after the fork

    @app.task(name=RENDER_TASK, bind=True)
    def render_task(self: Task, job_id: str) -> None:
        """A ticket: run the next queued job (see worker.run.claim_next)."""
        run_job(job_id, stores(), settings, self.request.hostname, send_render, process.ready_device())

    def send_render(job_id: str) -> None:
        render_task.apply_async(args=[job_id], queue=RENDER_QUEUE)

    def describe_task(model: str, size: list[int]) -> None:
        """Answer the API's question: which layers of ``model`` at this size?"""
        describe_layers(stores().catalog, model, (size[0], size[1]))

    app.task(name=DESCRIBE_TASK, soft_time_limit=60, time_limit=90)(describe_task)

    def examples_task(key: str) -> None:
        """Build the examples index ``key`` (its state, queued by the API, says of what)."""
        build_examples(key, stores(), settings, process.ready_device())

    app.task(name=EXAMPLES_TASK)(examples_task)
