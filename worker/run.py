"""A worker's path for one ticket, in order: claim → gather batch-mates → render → store → finish.

The nouns, as the README's glossary has them: a *filter* is a channel of a layer; a *variant* one of
a request's ``diversity`` pictures of a filter; a *picture* one rendered image of one filter variant
(core.pictures.Picture); a *row* one picture being optimized in a batch; a *chunk* the rows run
together within the memory budget (the engine's business); a *batch* the rows of all jobs a worker
renders together; a *request* one RenderSpec; a *job* a request as the service runs it (record,
state, results).

1. **claim**: a message is a ticket to run the *next* queued job (``claim_next``: callers take
   turns), or else its own job if that one is still to run; a duplicate delivery does nothing.
2. **gather**: queued jobs of the same batch key (core.batching) join while their rows fit
   ``batch_max_rows``, waiting at most until the first job has been queued ``batch_wait_seconds``
   (Triton's dynamic batcher). Each is claimed like any other, so its own ticket, when a worker gets
   it later, finds it running or finished. A job handed back by a failed batch (``solo``) gathers no
   batch-mates and joins no batch. A job whose pictures are all in the cache skips the wait.
3. **render**: every picture goes through the result cache (core.store.picture_cache); the engine
   renders, in one batch, only the pictures no job finds there, each once even where jobs overlap
   (one engine request per job, for the pictures it is the first to need).
4. **store**: a job is stored as soon as the requests its pictures come from are done: its list of
   pictures and its grid (core.store.files).
5. **finish**: the record turns ``succeeded``, through a short Redis outage if need be.

Meanwhile the BatchMonitor (worker.monitor) beats for every job; after each step a canceled job
leaves the batch (its rows with it unless another job waits for the same pictures) and a job handed
to another worker is dropped. A job that fails ends with its files removed; a failure of the whole
batch, or its time running out, is no batch-mate's own: while several jobs share the batch, each is
handed back to run alone instead.
"""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError
from PIL import Image
from redis import RedisError

from core.batching import batch_key, batch_rows
from core.cache_key import PictureKeys, picture_keys
from core.errors import FilterVizError, InvalidImage, StorageError, TimeLimitExceeded
from core.grid import encode_grid, grid_labels
from core.images import open_image
from core.jobs import BeatState, JobError, JobRecord
from core.pictures import Picture
from core.settings import Settings
from core.spec import ImageInit, RenderSpec
from core.store import Stores
from core.store.files import UPLOAD_SOURCE, KeyedFiles, PictureRef, filter_animation, filter_png, grid_png
from core.store.picture_cache import StoredPicture
from worker import metrics
from worker.monitor import BatchMonitor
from worker.previews import PreviewPicture, PreviewPublisher

if TYPE_CHECKING:
    from core.engine import Progress, RenderRequest, RequestResult

log = logging.getLogger(__name__)

T = TypeVar("T")
POLL_SECONDS = 0.01  # how often a gathering worker looks for new batch-mates
REDIS_PATIENCE_SECONDS = 60.0  # how long a rendered picture or a finished job waits for Redis to come back
REDIS_RETRY_SECONDS = 0.5


def run_job(
    job_id: str,
    stores: Stores,
    settings: Settings,
    worker: str,
    send_render: Callable[[str], None] | None = None,
    device: str | None = None,
) -> None:
    """Run the ticket ``job_id``: the next queued job, with whatever queued jobs can share its batch.

    ``send_render`` sends the ticket of a job handed back by a failed batch (without it, the
    janitor's outbox sweep sends it); ``device`` is this render process's (default: the setting's).
    """
    first = claim_next(job_id, stores, settings, worker)
    if first is None:
        return
    with BatchMonitor(stores.jobs, settings.heartbeat_seconds) as monitor:
        batch = _Batch(stores, settings, monitor, device or settings.device, send_render)
        if batch.admit(first) and batch.all_cached(first.id):
            batch.finish_ready()  # no waiting for batch-mates
            return
        for mate in gather(first, stores, settings, worker)[1:]:
            batch.admit(mate)
        batch.render()


# -- 1. claim ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker claimed: its record, and the token only its owner writes with."""

    record: JobRecord
    token: str  # the owner token of this claim

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def spec(self) -> RenderSpec:
        return self.record.request

    @property
    def queued_seconds(self) -> float:
        """Submit -> claimed, on the job store's clock."""
        assert self.record.started_at is not None  # set by the claim
        return (self.record.started_at - self.record.created_at).total_seconds()


def claim_next(job_id: str, stores: Stores, settings: Settings, worker: str) -> ClaimedJob | None:
    """The next queued job, callers taking turns; or else ``job_id`` (the message's own job) when it
    is still to run, e.g. running on a worker that went silent. None if nothing is to run here."""
    taken = stores.jobs.claim_next(worker, settings.max_attempts, settings.stale_after_seconds)
    if taken is None:
        return claim(job_id, stores, settings, worker)
    return _claimed(*taken, stores)


def claim(job_id: str, stores: Stores, settings: Settings, worker: str) -> ClaimedJob | None:
    """The job, claimed for this worker; None (and nothing changed) if it is not to run here."""
    outcome = stores.jobs.claim(job_id, worker, settings.max_attempts, settings.stale_after_seconds)
    if outcome.token is None:
        log.info("job %s not run here: %s", job_id, outcome.outcome)
        metrics.claim_refused(outcome.outcome)
        return None
    return _claimed(job_id, outcome.token, stores)


def _claimed(job_id: str, token: str, stores: Stores) -> ClaimedJob | None:
    record = stores.jobs.get(job_id)
    if record is None:  # expired between the claim and now
        return None
    stores.pending.discard(job_id, record.request)
    return ClaimedJob(record, token)


# -- 2. gather -----------------------------------------------------------------------------------


def gather(first: ClaimedJob, stores: Stores, settings: Settings, worker: str) -> list[ClaimedJob]:
    """``first`` and the queued jobs claimed to share its batch, oldest first (a solo job: alone)."""
    key = batch_key(first.spec)
    batch, rows = [first], batch_rows(first.spec)
    if first.record.solo:
        return batch
    deadline = time.monotonic() + max(0.0, settings.batch_wait_seconds - first.queued_seconds)
    while rows < settings.batch_max_rows:
        popped = stores.pending.pop(key)
        if popped is None:
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
            continue
        job_id, submitted = popped
        record = stores.jobs.get(job_id)
        if record is None or record.finished or record.solo:
            continue
        if rows + batch_rows(record.request) > settings.batch_max_rows:
            stores.pending.put_back(key, job_id, submitted)
            break
        joined = claim(job_id, stores, settings, worker)
        if joined is not None:
            batch.append(joined)
            rows += batch_rows(joined.spec)
    return batch


# -- 3. render -----------------------------------------------------------------------------------


@dataclass(eq=False)
class _Rendering:
    """One engine request of the batch: the pictures it renders, and how far it got."""

    request: "RenderRequest"
    keys: PictureKeys  # of the pictures it renders
    steps: tuple[int, int] = (0, 0)  # (steps done, steps in all)
    done: bool = False
    device: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def photo(self) -> str | None:
        return _photo(self.request.spec)


@dataclass
class _Part:
    """One layer of a job (a job of several layers has one per layer): its single-layer request."""

    spec: RenderSpec
    keys: PictureKeys  # of each of its pictures
    own: _Rendering | None = None  # the rendering planned for this part's missing pictures

    @property
    def pictures(self) -> list[tuple[int, int]]:
        """(filter, variant) of each of its pictures, in filter order."""
        return [(f, v) for f in self.spec.filters or () for v in range(self.spec.diversity)]


@dataclass
class _Job:
    """A claimed job of the batch, until it is finished."""

    claimed: ClaimedJob
    parts: list[_Part]  # one per layer (core.spec.RenderSpec.parts)
    init_image: Image.Image | None
    waits_for: list[_Rendering] = field(default_factory=list)  # the renderings its missing pictures come from

    @property
    def id(self) -> str:
        return self.claimed.id

    @property
    def spec(self) -> RenderSpec:
        return self.claimed.spec

    @property
    def keys(self) -> dict[tuple[int, int, int], str]:
        """The cache key of each of its pictures, by (part, filter, variant)."""
        return {(index, *picture): key for index, part in enumerate(self.parts) for picture, key in part.keys.items()}

    @property
    def own(self) -> list[_Rendering]:
        """The renderings planned for this job (one per layer with missing pictures)."""
        return [part.own for part in self.parts if part.own is not None]


class _Batch:
    """The jobs a worker renders together, and the pictures they show (by cache key)."""

    def __init__(
        self,
        stores: Stores,
        settings: Settings,
        monitor: BatchMonitor,
        device: str,
        send_render: Callable[[str], None] | None,
    ) -> None:
        self._stores, self._settings, self._monitor = stores, settings, monitor
        self._device, self._send_render = device, send_render
        self._shared = False  # several jobs render together: a failure of the batch is none of theirs alone
        self._jobs: dict[str, _Job] = {}  # unfinished, by job id
        self._pictures: dict[str, StoredPicture] = {}  # by cache key: from the cache or just rendered
        self._renderings: list[_Rendering] = []  # the engine requests, in the engine's order
        self._previews = PreviewPublisher(stores.previews, settings.preview_seconds)

    def admit(self, claimed: ClaimedJob) -> bool:
        """Check the job against its model, find its pictures in the cache; a job that fails here ends."""
        self._monitor.watch(claimed.id, claimed.token)
        metrics.job_claimed(claimed.queued_seconds)
        try:
            init_image = _init_image(claimed.spec, self._stores.uploads, self._settings.max_image_pixels)
            parts = [
                _Part(spec, _cache_keys(spec, claimed.record.caller, self._settings.weights_dir))
                for spec in claimed.spec.parts()
            ]
            for part in parts:
                for key in part.keys.values():
                    if key not in self._pictures and (cached := self._stores.cache.get(key)) is not None:
                        self._pictures[key] = cached
        except Exception as exc:  # whatever it is, the job must end: _end records and logs it
            self._end(claimed, exc)
            return False
        self._jobs[claimed.id] = _Job(claimed, parts, init_image)
        return True

    def all_cached(self, job_id: str) -> bool:
        return not any(self._missing(part) for part in self._jobs[job_id].parts)

    def render(self) -> None:
        """Render the pictures no job found in the cache; store and finish each job as soon as it can be."""
        from core.engine import render_batch  # torch is imported in pool processes only

        self._renderings = self._plan()
        self.finish_ready()
        self._shared = len(self._jobs) > 1
        if not self._renderings:
            return
        self._count_batch()
        started = time.perf_counter()
        try:
            batch = render_batch(
                [rendering.request for rendering in self._renderings],
                weights_dir=self._settings.weights_dir,
                device=self._device,
                memory_budget_mb=self._settings.memory_budget_mb,
                on_progress=self._on_progress,
                should_stop=self._should_stop,
            )
            for index, result in batch:
                self._keep(self._renderings[index], result)
                self.finish_ready()
            rendered = [(done.request.spec, len(done.keys)) for done in self._renderings if done.done]
            metrics.batch_rendered(rendered, self._device, time.perf_counter() - started)
        except Exception as exc:  # whatever it is, the batch's jobs must end: _end and _hand_back log it
            for job in list(self._jobs.values()):
                self._end(job.claimed, exc, batch_wide=True)

    def _missing(self, part: _Part) -> list[int]:
        """The part's filters with a picture neither cached nor rendered yet."""
        return list(dict.fromkeys(f for f, v in part.pictures if part.keys[(f, v)] not in self._pictures))

    def _plan(self) -> list[_Rendering]:
        """Engine requests for the missing pictures, each picture in one request only."""
        from core.engine import RenderRequest

        renderings: list[_Rendering] = []
        making: dict[str, _Rendering] = {}  # cache key of a filter's first variant -> the rendering making it
        for job in self._jobs.values():
            job.waits_for = []
            for part in job.parts:  # one engine request per layer: the batch runs each row to its own layer
                missing = self._missing(part)
                own = [f for f in missing if part.keys[(f, 0)] not in making]
                job.waits_for += [making[part.keys[(f, 0)]] for f in missing if f not in own]
                if own:
                    spec = part.spec.model_copy(update={"filters": own})
                    keys = {picture: key for picture, key in part.keys.items() if picture[0] in own}
                    part.own = _Rendering(RenderRequest(spec, job.init_image), keys)
                    renderings.append(part.own)
                    job.waits_for.append(part.own)
                    making.update((part.keys[(f, 0)], part.own) for f in own)
            job.waits_for = list(dict.fromkeys(job.waits_for))
        return renderings

    def _count_batch(self) -> None:
        rows = sum(len(rendering.keys) for rendering in self._renderings)
        queued = [job.claimed.queued_seconds for job in self._jobs.values()]
        _count(lambda: self._stores.render_stats.record_batch(len(queued), rows, math.fsum(queued)))
        metrics.batch_started(len(queued), rows)
        log.info(
            "batch of %d jobs: rendering %d pictures in %d requests (queued %.3f s on average)",
            *(len(queued), rows, len(self._renderings), math.fsum(queued) / len(queued)),
        )

    def _on_progress(self, progress: "Progress") -> None:
        """The engine's progress, by request, as each job's (steps done, steps in all); and previews."""
        for index, steps in progress.items():
            self._renderings[index].steps = steps
        by_job = {}
        for job_id, job in self._jobs.items():
            parts = [rendering.steps for rendering in job.waits_for]
            by_job[job_id] = (sum(done for done, _ in parts), sum(total for _, total in parts))
        self._monitor.report(by_job)
        self._publish_previews(progress, by_job)

    def _publish_previews(self, progress: "Progress", by_job: dict[str, tuple[int, int]]) -> None:
        """A preview for each job that asked and is due one: its pictures in the chunk being optimized."""
        for job_id, job in self._jobs.items():
            if not job.spec.previews or not self._previews.due(job_id):
                continue
            own = set(job.keys.values())  # a rendering shared with another job holds its pictures too
            pictures = [
                PreviewPicture(rendering.request.spec.layer, now.filter, now.variant, rendering.steps[0], now.pixels)
                for index, rendering in enumerate(self._renderings)
                if index in progress and rendering in job.waits_for
                for now in progress.pictures(index)
                if rendering.keys[(now.filter, now.variant)] in own
            ]
            self._previews.publish(job_id, job.claimed.token, *by_job[job_id], pictures)

    def _should_stop(self) -> set[int]:
        """Drop the jobs that must stop; the requests no unfinished job waits for any more."""
        for job_id, state in self._monitor.stopping().items():
            if job_id in self._jobs:
                self._stop(self._jobs.pop(job_id).claimed, state)
        wanted = {rendering for job in self._jobs.values() for rendering in job.waits_for}
        return {
            index for index, rendering in enumerate(self._renderings) if not (rendering.done or rendering in wanted)
        }

    def _keep(self, rendering: _Rendering, result: "RequestResult") -> None:
        """A finished request's pictures (with their bytes), into the cache."""
        for picture in result.pictures:
            key = rendering.keys[picture.key]
            self._pictures[key] = _persist(partial(self._stores.cache.put, key, picture, rendering.photo))
        rendering.done, rendering.device, rendering.seconds = True, result.device, result.seconds

    # -- 4. store and 5. finish ------------------------------------------------------------------

    def finish_ready(self) -> None:
        """Store and finish every job whose pictures are all there."""
        for job in [job for job in self._jobs.values() if all(rendering.done for rendering in job.waits_for)]:
            del self._jobs[job.id]
            try:
                self._store_and_succeed(job)
            except Exception as exc:  # whatever it is, the job must end: _end records and logs it
                self._end(job.claimed, exc)

    def _store_and_succeed(self, job: _Job) -> None:
        started = time.perf_counter()
        several = job.spec.layers is not None  # a job of several layers names its files by the layer's index
        files: dict[str, PictureRef] = {}
        results: list[Picture] = []
        for index, part in enumerate(job.parts):
            stored = [self._pictures[part.keys[picture]] for picture in part.pictures]
            at = index if several else None
            files |= {**_files(stored, at), grid_png(at): self._grid(part)}
            results += [item.picture.model_copy(update={"layer": part.spec.layer}) for item in stored]
        self._stores.results.refer(job.id, files)
        rendered = sum(len(rendering.keys) for rendering in job.own)
        _count(lambda: self._stores.render_stats.record_pictures(len(results) - rendered, rendered))
        metrics.pictures_served(len(results) - rendered, rendered)
        # its layers' requests ran in one batch: each phase took as long as the longest took it
        phases = {phase for rendering in job.own for phase in rendering.seconds}
        seconds = {phase: max(rendering.seconds.get(phase, 0.0) for rendering in job.own) for phase in phases}
        seconds["store"] = time.perf_counter() - started
        seconds = {phase: round(value, 4) for phase, value in seconds.items()}
        steps = sum(rendering.steps[1] for rendering in job.waits_for) or job.spec.steps
        device = "cache" if not job.waits_for else job.own[0].device if job.own else self._device
        token = job.claimed.token
        _persist(lambda: self._stores.jobs.beat(job.id, token, steps, steps))
        if _persist(lambda: self._stores.jobs.succeed(job.id, token, results, device, seconds)):
            metrics.job_finished("succeeded")
        self._monitor.release(job.id)

    def _grid(self, part: _Part) -> PictureRef:
        """A layer's contact sheet: from the cache when the same pictures were shown together before."""
        keys = [part.keys[picture] for picture in part.pictures]
        labels = grid_labels(part.spec, part.pictures)
        grid = self._stores.cache.get_grid(keys, labels)
        if grid is None:
            pngs = [self._stores.results.pictures.read(self._pictures[key].png) for key in keys]
            found = [png for png in pngs if png is not None]
            if len(found) < len(pngs):
                raise StorageError("a picture of this job was deleted before its job was stored; submit it again")
            grid = self._stores.cache.put_grid(keys, labels, encode_grid(found, labels), _photo(part.spec))
        return grid

    # -- jobs that end otherwise -----------------------------------------------------------------

    def _stop(self, claimed: ClaimedJob, state: BeatState) -> None:
        self._monitor.release(claimed.id)
        if state == "lost":
            log.warning("job %s was handed to another worker; dropping this attempt", claimed.id)
        elif _persist(lambda: self._stores.jobs.mark_canceled(claimed.id, claimed.token)):
            self._stores.results.delete(claimed.id)
            metrics.job_finished("canceled")

    def _end(self, claimed: ClaimedJob, exc: Exception, batch_wide: bool = False) -> None:
        """Fail the job with the reason ``exc`` gives, and remove its files; or, where the batch failed
        while several jobs shared it, hand the job back to run alone."""
        if self._shared and (batch_wide or isinstance(exc, SoftTimeLimitExceeded)):
            self._hand_back(claimed, exc)
            return
        self._jobs.pop(claimed.id, None)
        error = _job_error(claimed.id, exc, self._settings.job_soft_time_limit)
        failed = _persist(lambda: self._stores.jobs.fail(claimed.id, claimed.token, error))
        self._monitor.release(claimed.id)
        if failed:
            self._stores.results.delete(claimed.id)
            metrics.job_finished("failed")

    def _hand_back(self, claimed: ClaimedJob, exc: Exception) -> None:
        """Queue the job again to run alone, the attempt not counted, and send its ticket."""
        self._jobs.pop(claimed.id, None)
        self._monitor.release(claimed.id)
        if not _persist(lambda: self._stores.jobs.release(claimed.id, claimed.token)):
            return  # canceled, deleted or handed on meanwhile
        self._stores.results.delete(claimed.id)
        metrics.job_retried("batch_failed")
        log.warning("job %s: its batch failed (%s: %s); queued again to run alone", claimed.id, type(exc).__name__, exc)
        if self._send_render is None:
            return  # the janitor's outbox sweep sends it
        try:
            self._send_render(claimed.id)
            self._stores.jobs.mark_dispatched(claimed.id)
        except (OperationalError, RedisError) as send_error:
            log.warning("could not send job %s again (%s); the janitor will", claimed.id, send_error)


# -- helpers -------------------------------------------------------------------------------------


def _files(stored: list[StoredPicture], part: int | None) -> dict[str, PictureRef]:
    """A layer's file names and the pictures they are: each PNG, and each animation there is."""
    files = {filter_png(*item.picture.key, part): item.png for item in stored}
    files.update((filter_animation(*item.picture.key, part), item.webp) for item in stored if item.webp is not None)
    return files


def _persist(write: Callable[[], T]) -> T:
    """A write a job cannot do without (a rendered picture into the cache, the job-store write that ends
    it), retried through a short Redis outage: rendered work is not thrown away for one (meanwhile the
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
    """What the job's record says went wrong; a failure that is not one of ours (a bug, no memory) is logged."""
    if isinstance(exc, SoftTimeLimitExceeded):
        exc = TimeLimitExceeded(f"the job ran longer than {soft_time_limit} s and was stopped")
    if isinstance(exc, FilterVizError):
        log.info("job %s failed: %s: %s", job_id, type(exc).__name__, exc)
        return JobError(type=type(exc).__name__, message=str(exc), field=exc.field)
    log.error("job %s failed", job_id, exc_info=exc)  # the job must still end
    return JobError(type="InternalError", message=f"{type(exc).__name__}: {exc}")


def _photo(spec: RenderSpec) -> str | None:
    """The upload a request starts from: its pictures are deleted with it."""
    return spec.init.image_id if isinstance(spec.init, ImageInit) else None


def _cache_keys(spec: RenderSpec, caller: str | None, weights_dir: Path | None) -> PictureKeys:
    """The cache key of each picture of a single-layer request: from the layer's catalog name and the
    weight file's identity, which the engine tells without loading the model."""
    from core.engine import check_spec, weights_identity  # torch is imported in pool processes only

    return picture_keys(spec, check_spec(spec).name, weights_identity(spec.model, weights_dir), caller)


def _init_image(spec: RenderSpec, uploads: KeyedFiles, max_pixels: int) -> Image.Image | None:
    if not isinstance(spec.init, ImageInit):
        return None
    data = uploads.get(spec.init.image_id, UPLOAD_SOURCE)
    if data is None:
        raise InvalidImage(f"start image {spec.init.image_id} is not stored (any more); upload it again")
    return open_image(data, max_pixels)
