"""The Celery tasks. They carry ids and names only; everything else is in Redis."""

from functools import cache

from celery import Task

from core.queues import DESCRIBE_TASK, RENDER_QUEUE, RENDER_TASK
from core.store import Stores
from worker.app import app, settings
from worker.catalog import describe_layers
from worker.run import run_job


@cache
def _stores() -> Stores:
    """Opened once per pool process, after the fork."""
    return Stores.from_settings(settings)


@app.task(name=RENDER_TASK, bind=True)
def render_task(self: Task, job_id: str) -> None:
    """A ticket: run the next queued job (see worker.batch.claim_next)."""
    run_job(job_id, _stores(), settings, worker=self.request.hostname, send_render=_send_render)


def _send_render(job_id: str) -> None:
    render_task.apply_async(args=[job_id], queue=RENDER_QUEUE)


@app.task(name=DESCRIBE_TASK, soft_time_limit=60, time_limit=90)
def describe_task(model: str, size: list[int]) -> None:
    describe_layers(_stores().catalog, model, (size[0], size[1]))
