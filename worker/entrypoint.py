"""The ``celery -A worker.entrypoint worker`` entry point: the one module that builds an app when imported.

Celery's command line finds its app as a module's ``app`` attribute; this module makes it with the
factory (worker.app.create_celery) from the environment's Settings. Nothing else imports it.
"""

from core.settings import Settings
from worker.app import create_celery

app = create_celery(Settings())
