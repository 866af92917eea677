"""Render jobs, from claim to stored PNGs: one job, or a batch of compatible ones, through the cache.

Every picture goes through the result cache (core.store.picture_cache): a job whose pictures are all
there is finished without rendering; otherwise the worker gathers queued batch-mates
(worker.batch) and renders, in one engine batch, only the pictures none of them finds in the
cache, each once even where jobs overlap. A job is stored and finished as soon as the requests
its pictures come from are done; a canceled job leaves the batch at the next step, and its rows
with it unless another job waits for the same pictures.
"""

import logging
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError
from PIL import Image
from redis import RedisError

from core.errors import FilterVizError, InvalidImage, StorageError
from core.grid import encode_grid, grid_labels
from core.images import open_image
from core.jobs import BeatState, FilterResult, JobError
from core.settings import Settings
from core.spec import ImageInit, RenderSpec
from core.store import Stores
from core.store.files import GRID_PNG, UPLOAD_SOURCE, PictureRef, ResultStorage, filter_animation, filter_png
from core.store.picture_cache import CachedPicture
from worker.batch import ClaimedJob, claim_next, gather
from worker.monitor import BatchMonitor
from worker.placement import render_device

if TYPE_CHECKING:
    from core.engine import RenderRequest

log = logging.getLogger(__name__)

T = TypeVar("T")
REDIS_PATIENCE_SECONDS = 60.0  # how long a finished job waits for Redis to come back
REDIS_RETRY_SECONDS = 0.5

Planned = list[tuple["RenderRequest", dict[tuple[int, int], str]]]  # engine requests with their pictures' keys


def run_job(
    job_id: str, stores: Stores, settings: Settings, worker: str, send_render: Callable[[str], None] | None = None
) -> None:
    """Claim the next job (callers take turns) and see it through, with whatever queued jobs can share its batch.

    A message is a ticket: it runs the next queued job, or else its own ``job_id`` if that one is
    still to run; a duplicate delivery with nothing queued does nothing. On failure or cancellation
    a job's files are removed, so nothing half-written stays. ``send_render`` sends the ticket of a
    job handed back by a failed batch (without it, the janitor's outbox sweep sends it).
    """
    first = claim_next(job_id, stores, settings, worker)
    if first is not None:
        _Batch(stores, settings, send_render).run(first, lambda: gather(first, stores, settings, worker)[1:])


@dataclass
class _Job:
    claimed: ClaimedJob
    keys: dict[tuple[int, int], str]  # (filter, variant) -> cache key
    init_image: Image.Image | None
    requests: set[int] = field(default_factory=set)  # engine requests its missing pictures come from
    own: int | None = None  # the one of them planned for this job
    rendered: int = 0  # pictures its own request renders

    @property
    def spec(self) -> RenderSpec:
        return self.claimed.spec

    @property
    def pictures(self) -> list[tuple[int, int]]:
        return [(f, v) for f in self.spec.filters for v in range(self.spec.diversity)]


class _Batch:
    def __init__(self, stores: Stores, settings: Settings, send_render: Callable[[str], None] | None) -> None:
        self._stores, self._settings, self._send_render = stores, settings, send_render
        self._shared = False  # several jobs render together: a failure of the batch is none of theirs alone
        self._device = render_device(settings)
        self._monitor = BatchMonitor(stores.jobs, settings.heartbeat_seconds)
        self._jobs: dict[str, _Job] = {}  # unfinished
        self._pictures: dict[str, CachedPicture] = {}  # by cache key: from the cache or just rendered
        self._progress: dict[int, tuple[int, int]] = {}  # engine request -> (steps done, steps in all)
        self._done: set[int] = set()  # engine requests rendered
        self._seconds: dict[int, dict[str, float]] = {}  # engine request -> its phases
        self._devices: dict[int, str] = {}  # engine request -> where it rendered

    def run(self, first: ClaimedJob, batch_mates: Callable[[], list[ClaimedJob]]) -> None:
        with self._monitor:
            self._admit(first)
            if first.id in self._jobs and not self._missing(self._jobs[first.id]):
                self._finish_ready()  # all cached: no waiting for batch-mates
                return
            for job in batch_mates():
                self._admit(job)
            requests = self._plan()
            self._finish_ready()
            self._shared = len(self._jobs) > 1
            if requests:
                self._render(requests)

    # -- before rendering ----------------------------------------------------------------------

    def _admit(self, claimed: ClaimedJob) -> None:
        """Check the job against its model, find its pictures in the cache; a job that fails here ends."""
        from core.engine import picture_keys  # torch is imported in pool processes only

        self._monitor.watch(claimed.id, claimed.token)
        try:
            init_image = _init_image(claimed.spec, self._stores.uploads, self._settings.max_image_pixels)
            keys = picture_keys(claimed.spec, self._settings.weights_dir, self._device, claimed.record.caller)
            for key in keys.values():
                if key not in self._pictures and (cached := self._stores.cache.get(key)) is not None:
                    self._pictures[key] = cached
        except Exception as exc:
            self._end(claimed, exc)
            return
        self._jobs[claimed.id] = _Job(claimed, keys, init_image)

    def _missing(self, job: _Job) -> list[int]:
        """The job's filters with a picture neither cached nor rendered yet."""
        return list(dict.fromkeys(f for f, v in job.pictures if job.keys[(f, v)] not in self._pictures))

    def _plan(self) -> Planned:
        """Engine requests for the missing pictures, each picture in one request only."""
        from core.engine import RenderRequest

        requests: Planned = []
        owner: dict[str, int] = {}  # cache key of a filter's first picture -> the request rendering it
        for job in self._jobs.values():
            missing = self._missing(job)
            job.requests = {owner[job.keys[(f, 0)]] for f in missing if job.keys[(f, 0)] in owner}
            own = [f for f in missing if job.keys[(f, 0)] not in owner]
            if own:
                spec = job.spec.model_copy(update={"filters": own})
                keys = {picture: job.keys[picture] for picture in job.pictures if picture[0] in own}
                requests.append((RenderRequest(spec, job.init_image), keys))
                owner.update((job.keys[(f, 0)], len(requests) - 1) for f in own)
                job.own, job.rendered = len(requests) - 1, len(keys)
                job.requests.add(job.own)
        return requests

    # -- rendering -----------------------------------------------------------------------------

    def _render(self, requests: Planned) -> None:
        from core.engine import render_batch

        rows = sum(len(keys) for _, keys in requests)
        queued = [job.claimed.queued_seconds for job in self._jobs.values()]
        _count(lambda: self._stores.render_stats.record_batch(len(queued), rows, math.fsum(queued)))
        log.info("batch of %d jobs: rendering %d pictures in %d requests (queued %.3f s on average)",
                 len(queued), rows, len(requests), math.fsum(queued) / len(queued))  # fmt: skip
        try:
            batch = render_batch(
                [request for request, _ in requests],
                weights_dir=self._settings.weights_dir,
                device=self._device,
                memory_budget_mb=self._settings.memory_budget_mb,
                on_step=self._on_step,
            )
            for index, result in batch:
                photo = _photo(requests[index][0].spec)
                for item in result.filters:
                    key = requests[index][1][(item.filter, item.variant)]
                    self._pictures[key] = self._stores.cache.put(key, item, photo)
                self._done.add(index)
                self._seconds[index], self._devices[index] = result.seconds, result.device
                self._finish_ready()
        except Exception as exc:
            for job in list(self._jobs.values()):
                self._end(job.claimed, exc, batch_wide=True)

    def _on_step(self, progress: dict[int, tuple[int, int]]) -> Collection[int]:
        """Each job's progress and state; the requests no unfinished job waits for any more."""
        self._progress.update(progress)
        by_job = {}
        for job_id, job in self._jobs.items():
            parts = [self._progress[r] for r in job.requests]
            by_job[job_id] = (sum(done for done, _ in parts), sum(total for _, total in parts))
        for job_id, state in self._monitor.step(by_job).items():
            self._stop(self._jobs.pop(job_id).claimed, state)
        wanted = set().union(*(job.requests for job in self._jobs.values()))
        return [request for request in progress if request not in wanted]

    # -- ending jobs ---------------------------------------------------------------------------

    def _finish_ready(self) -> None:
        for job in [job for job in self._jobs.values() if job.requests <= self._done]:
            del self._jobs[job.claimed.id]
            try:
                self._store_and_succeed(job)
            except Exception as exc:
                self._end(job.claimed, exc)

    def _store_and_succeed(self, job: _Job) -> None:
        started = time.perf_counter()
        results, refs = [], {}
        for f, v in job.pictures:
            picture = self._pictures[job.keys[(f, v)]]
            refs[filter_png(f, v)] = picture.png
            if picture.animation is not None:
                refs[filter_animation(f, v)] = picture.animation
            results.append(FilterResult(filter=f, variant=v, activation=picture.activation,
                                        start_activation=picture.start_activation, dead=picture.dead,
                                        animation=picture.animation is not None))  # fmt: skip
        self._stores.results.refer(job.claimed.id, {**refs, GRID_PNG: self._grid(job)})
        _count(lambda: self._stores.render_stats.record_pictures(len(results) - job.rendered, job.rendered))
        seconds = {**self._seconds.get(job.own, {}), "store": time.perf_counter() - started}
        seconds = {phase: round(value, 4) for phase, value in seconds.items()}
        steps = sum(self._progress[r][1] for r in job.requests) or job.spec.steps
        device = self._devices.get(job.own, self._device) if job.requests else "cache"
        _persist(lambda: self._stores.jobs.beat(job.claimed.id, job.claimed.token, steps, steps))
        _persist(lambda: self._stores.jobs.succeed(job.claimed.id, job.claimed.token, results, device, seconds))
        self._monitor.release(job.claimed.id)

    def _grid(self, job: _Job) -> PictureRef:
        """The job's contact sheet: from the cache when the same pictures were shown together before."""
        keys = [job.keys[p] for p in job.pictures]
        labels = grid_labels(job.spec, job.pictures)
        grid = self._stores.cache.get_grid(keys, labels)
        if grid is None:
            pictures = [self._stores.results.pictures.read(self._pictures[key].png) for key in keys]
            if any(picture is None for picture in pictures):
                raise StorageError("a picture of this job was deleted before its job was stored; submit it again")
            png = encode_grid(pictures, labels)  # type: ignore[arg-type]
            grid = self._stores.cache.put_grid(keys, labels, png, _photo(job.spec))
        return grid

    def _stop(self, claimed: ClaimedJob, state: BeatState) -> None:
        self._monitor.release(claimed.id)
        if state == "lost":
            log.warning("job %s was handed to another worker; dropping this attempt", claimed.id)
        elif _persist(lambda: self._stores.jobs.mark_canceled(claimed.id, claimed.token)):
            self._stores.results.delete(claimed.id)

    def _end(self, claimed: ClaimedJob, exc: Exception, batch_wide: bool = False) -> None:
        """Fail the job with the reason ``exc`` gives, and remove its files.

        A failure of the whole batch, or its time running out, is no batch-mate's own: while several
        jobs share the batch, each is handed back to run alone instead, and only a job that fails
        alone fails.
        """
        if self._shared and (batch_wide or isinstance(exc, SoftTimeLimitExceeded)):
            self._hand_back(claimed, exc)
            return
        self._jobs.pop(claimed.id, None)
        error = _job_error(claimed.id, exc, self._settings.job_soft_time_limit)
        failed = _persist(lambda: self._stores.jobs.fail(claimed.id, claimed.token, error))
        self._monitor.release(claimed.id)
        if failed:
            self._stores.results.delete(claimed.id)

    def _hand_back(self, claimed: ClaimedJob, exc: Exception) -> None:
        """Queue the job again to run alone, the attempt not counted, and send its ticket."""
        self._jobs.pop(claimed.id, None)
        self._monitor.release(claimed.id)
        if not _persist(lambda: self._stores.jobs.release(claimed.id, claimed.token)):
            return  # canceled, deleted or handed on meanwhile
        self._stores.results.delete(claimed.id)
        log.warning("job %s: its batch failed (%s: %s); queued again to run alone", claimed.id, type(exc).__name__, exc)
        if self._send_render is None:
            return  # the janitor's outbox sweep sends it
        try:
            self._send_render(claimed.id)
            self._stores.jobs.mark_dispatched(claimed.id)
        except (OperationalError, RedisError) as send_error:
            log.warning("could not send job %s again (%s); the janitor will", claimed.id, send_error)


def _persist(write: Callable[[], T]) -> T:
    """A job-store write that ends a job, retried through a short Redis outage (meanwhile the
    monitor's heartbeats resume as soon as Redis is back, so no janitor hands the job on)."""
    deadline = time.monotonic() + REDIS_PATIENCE_SECONDS
    while True:
        try:
            return write()
        except RedisError as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("could not reach Redis to end a job (%s); trying again", exc)
            time.sleep(REDIS_RETRY_SECONDS)


def _count(record: Callable[[], None]) -> None:
    """Statistics are worth no job: a Redis error here is only logged."""
    try:
        record()
    except RedisError as exc:
        log.warning("could not update the render statistics: %s", exc)


def _job_error(job_id: str, exc: Exception, soft_time_limit: int) -> JobError:
    if isinstance(exc, FilterVizError):
        return JobError(type=type(exc).__name__, message=str(exc), field=exc.field)
    if isinstance(exc, SoftTimeLimitExceeded):
        message = f"the job ran longer than {soft_time_limit} s and was stopped"
        return JobError(type="TimeLimitExceeded", message=message)
    log.error("job %s failed", job_id, exc_info=exc)  # a bug or an out-of-memory: the job must still end
    return JobError(type="InternalError", message=f"{type(exc).__name__}: {exc}")


def _photo(spec: RenderSpec) -> str | None:
    """The upload a request starts from: its pictures are deleted with it."""
    return spec.init.image_id if isinstance(spec.init, ImageInit) else None


def _init_image(spec: RenderSpec, uploads: ResultStorage, max_pixels: int) -> Image.Image | None:
    if not isinstance(spec.init, ImageInit):
        return None
    data = uploads.get(spec.init.image_id, UPLOAD_SOURCE)
    if data is None:
        raise InvalidImage(f"start image {spec.init.image_id} is not stored (any more); upload it again")
    return open_image(data, max_pixels)
