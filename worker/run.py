"""One render job, from claim to stored PNGs."""

import logging

from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image

from core.errors import FilterVizError, InvalidImage
from core.images import open_image
from core.jobs import FilterResult, JobError
from core.settings import Settings
from core.spec import ImageInit, RenderSpec
from core.storage import GRID_PNG, UPLOAD_SOURCE, ResultStorage, filter_animation, filter_png
from core.stores import Stores
from worker.monitor import Canceled, ClaimLost, JobMonitor, StepCallback

log = logging.getLogger(__name__)


def run_job(job_id: str, stores: Stores, settings: Settings, worker: str) -> None:
    """Claim the job, render it, store every PNG, then mark it succeeded (or failed / canceled).

    A duplicate delivery (the job is finished, or running elsewhere with a fresh heartbeat) does
    nothing. On failure or cancellation the job's files are removed, so nothing half-written stays.
    """
    claim = stores.jobs.claim(job_id, worker, settings.max_attempts, settings.stale_after_seconds)
    if claim.token is None:
        log.info("job %s not run here: %s", job_id, claim.outcome)
        return
    record = stores.jobs.get(job_id)
    if record is None:  # expired between the claim and now
        return
    token = claim.token
    try:
        with JobMonitor(stores.jobs, job_id, token, settings.heartbeat_seconds) as monitor:
            results, device, seconds = _render_and_store(job_id, record.request, stores, settings, monitor.on_step)
    except ClaimLost:
        log.warning("job %s was handed to another worker; dropping this attempt", job_id)
        return
    except Canceled:
        ended = stores.jobs.mark_canceled(job_id, token)
    except FilterVizError as exc:
        ended = stores.jobs.fail(job_id, token, JobError(type=type(exc).__name__, message=str(exc), field=exc.field))
    except SoftTimeLimitExceeded:
        message = f"the job ran longer than {settings.job_soft_time_limit} s and was stopped"
        ended = stores.jobs.fail(job_id, token, JobError(type="TimeLimitExceeded", message=message))
    except Exception as exc:  # a bug or an out-of-memory: the job must still end, with the reason
        log.exception("job %s failed", job_id)
        ended = stores.jobs.fail(job_id, token, JobError(type="InternalError", message=f"{type(exc).__name__}: {exc}"))
    else:
        stores.jobs.succeed(job_id, token, results, device, seconds)
        return
    if ended:
        stores.results.delete(job_id)


def _render_and_store(
    job_id: str, spec: RenderSpec, stores: Stores, settings: Settings, on_step: StepCallback
) -> tuple[list[FilterResult], str, dict[str, float]]:
    from core.engine import render  # torch is imported in pool processes only

    init_image = _init_image(spec, stores.uploads, settings.max_image_pixels)
    result = render(  # runs core.engine.check_spec first: the API's checks, again, against the real model
        spec,
        init_image=init_image,
        weights_dir=settings.weights_dir,
        device=settings.device,
        memory_budget_mb=settings.memory_budget_mb,
        on_step=on_step,
    )
    results = []
    for item in result.filters:
        stores.results.put(job_id, filter_png(item.filter, item.variant), item.png)
        if item.animation is not None:
            stores.results.put(job_id, filter_animation(item.filter, item.variant), item.animation)
        results.append(
            FilterResult(
                filter=item.filter,
                variant=item.variant,
                activation=item.activation,
                start_activation=item.start_activation,
                dead=item.dead,
                animation=item.animation is not None,
            )
        )
    stores.results.put(job_id, GRID_PNG, result.grid_png)
    return results, result.device, result.seconds


def _init_image(spec: RenderSpec, uploads: ResultStorage, max_pixels: int) -> Image.Image | None:
    if not isinstance(spec.init, ImageInit):
        return None
    data = uploads.get(spec.init.image_id, UPLOAD_SOURCE)
    if data is None:
        raise InvalidImage(f"start image {spec.init.image_id} is not stored (any more); upload it again")
    return open_image(data, max_pixels)
