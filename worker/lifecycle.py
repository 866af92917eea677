"""What a worker's parent process does besides consuming tasks: the janitor, webhooks, catalog publication.

They start once the worker is ready and stop with it. The parent never imports torch: CUDA must
not be initialized before the pool forks.
"""

import subprocess

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from core.queues import RENDER_QUEUE, RENDER_TASK
from core.settings import Settings
from core.store import Stores
from worker.catalog import start_publisher
from worker.janitor import Janitor
from worker.webhooks import WebhookSender


class ParentDuties:
    def __init__(self, app: Celery, settings: Settings) -> None:
        self._app, self._settings = app, settings
        self._janitor: Janitor | None = None
        self._webhooks: WebhookSender | None = None
        self._publisher: subprocess.Popen | None = None

    def start(self, sender: object, **_: object) -> None:
        worker_name: str = sender.hostname  # type: ignore[attr-defined]
        stores = Stores.from_settings(self._settings)
        self._janitor = Janitor(stores, self._settings, worker_name, self._send_render)
        self._janitor.start()
        if self._settings.webhook_secret is not None:
            self._webhooks = WebhookSender(stores.webhooks, self._settings)
            self._webhooks.start()
        self._publisher = start_publisher()

    def stop(self, **_: object) -> None:
        if self._publisher is not None and self._publisher.poll() is None:
            self._publisher.terminate()
        if self._janitor is not None:
            self._janitor.stop()
        if self._webhooks is not None:
            self._webhooks.stop()

    def _send_render(self, job_id: str) -> None:
        self._app.send_task(RENDER_TASK, args=[job_id], queue=RENDER_QUEUE)


def install_parent_duties(app: Celery, settings: Settings) -> None:
    duties = ParentDuties(app, settings)
    worker_ready.connect(duties.start, weak=False)
    worker_shutdown.connect(duties.stop, weak=False)
