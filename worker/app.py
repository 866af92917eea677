"""The workers' Celery app, built by a factory: nothing happens when this module is imported.

``celery -A worker.entrypoint worker`` runs it (worker.entrypoint calls :func:`create_celery`).
"""

from celery import Celery
from celery.signals import celeryd_init, worker_process_init
from kombu import Queue

from core.queues import DESCRIBE_TASK, META_QUEUE, RENDER_QUEUE
from core.settings import Settings
from core.store.connection import redis_url
from worker.lifecycle import install_parent_duties
from worker.metrics import install_exporter
from worker.placement import RenderProcess
from worker.tasks import register_tasks

# The broker redelivers an unacknowledged task after its visibility timeout; it must exceed the
# longest job, or a job still running would be handed to a second worker.
VISIBILITY_MARGIN_SECONDS = 60


def create_celery(settings: Settings) -> Celery:
    """The app with its queues and limits, its tasks, and what the parent and each pool process do at start."""
    url = redis_url(settings)
    app = Celery("filterviz", broker=url, backend=url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.job_time_limit + VISIBILITY_MARGIN_SECONDS},
        broker_connection_retry_on_startup=True,
        task_soft_time_limit=settings.job_soft_time_limit,
        task_time_limit=settings.job_time_limit,
        task_queues=[Queue(RENDER_QUEUE), Queue(META_QUEUE)],
        task_default_queue=RENDER_QUEUE,
        task_routes={DESCRIBE_TASK: {"queue": META_QUEUE}},
        task_ignore_result=True,  # the job record is the result
        task_serializer="json",
        accept_content=["json"],
    )
    process = RenderProcess(settings)
    register_tasks(app, settings, process)
    install_parent_duties(app, settings)
    install_exporter(settings)
    celeryd_init.connect(process.note_pool_size, weak=False)
    worker_process_init.connect(process.set_up, weak=False)
    return app
