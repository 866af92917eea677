"""Sending tasks to the workers, by name: the API never imports the workers' code."""

from celery import Celery

from core.queues import DESCRIBE_TASK, EXAMPLES_TASK, META_QUEUE, RENDER_QUEUE, RENDER_TASK


class Dispatcher:
    def __init__(self, broker_url: str) -> None:
        self._celery = Celery("filterviz-api", broker=broker_url)
        self._celery.conf.update(broker_connection_retry_on_startup=True, task_serializer="json")

    def render(self, job_id: str) -> None:
        self._celery.send_task(RENDER_TASK, args=[job_id], queue=RENDER_QUEUE)

    def describe(self, model: str, size: tuple[int, int], expires_seconds: float) -> None:
        """Ask a worker for a model's layers at ``size``; the answer lands in the catalog."""
        self._celery.send_task(DESCRIBE_TASK, args=[model, list(size)], queue=META_QUEUE, expires=expires_seconds)

    def examples(self, key: str) -> None:
        """Build the examples index ``key``: on the render queue, where the workers have the models."""
        self._celery.send_task(EXAMPLES_TASK, args=[key], queue=RENDER_QUEUE)
