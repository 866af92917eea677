"""Queuing a validated request: the job store's admission, its refusals as problems, and the ticket.

Shared by the routes that create jobs (POST /v1/jobs, the stable picture URLs).
"""

from kombu.exceptions import OperationalError

from api.deps import Services
from api.problems import FieldError, Problem, too_many, unavailable
from core.jobs import Admission, JobRecord, Limits
from core.settings import Settings
from core.spec import ImageInit


def admission_limits(settings: Settings) -> Limits:
    """The bounds a create checks atomically: the whole queue's and one caller's."""
    return Limits(settings.max_queued_jobs, settings.max_active_jobs_per_key)


def admitted(admission: Admission, idempotency_key: str | None, settings: Settings) -> JobRecord:
    """The created or replayed job, or the problem that says why there is none."""
    if admission.outcome == "conflict":
        msg = (
            f"key {idempotency_key!r} was already used for another request (job {admission.conflicting_id}); "
            "send a new key for a new request"
        )
        error = FieldError(loc=["header", "Idempotency-Key"], msg=msg, type="idempotency_key_reused")
        raise Problem(422, "Idempotency-Key reused", msg, type="/problems/idempotency-key-reused", errors=[error])
    if admission.outcome == "queue_full":
        detail = f"{settings.max_queued_jobs} jobs are waiting for a worker, the most this service queues"
        raise unavailable("Queue full", f"{detail}; try again later", "/problems/queue-full")
    if admission.outcome == "caller_busy":
        detail = f"{settings.max_active_jobs_per_key} of your jobs are queued or running, the most allowed"
        raise too_many("Too many jobs", f"{detail}; wait for one to finish", "/problems/too-many-jobs")
    assert admission.job is not None  # created or replayed
    return admission.job


def dispatch(services: Services, record: JobRecord) -> None:
    """Queue the job's task; a job that could not be queued is forgotten (then 503).

    Should this process die before the message is sent, a worker's janitor sends it later (the outbox).
    """
    try:
        services.dispatcher.render(record.id)
    except OperationalError:
        services.stores.jobs.delete(record.id, record.caller)
        raise
    services.stores.jobs.mark_dispatched(record.id)
    if isinstance(record.request.init, ImageInit):
        services.stores.upload_records.keep(record.request.init.image_id)
