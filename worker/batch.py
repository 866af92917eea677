"""Gathering a batch: the job a worker was handed, then queued jobs that can share its batch.

Like Triton's dynamic batcher: jobs of the same batch key (core.batching) join while their rows
fit ``batch_max_rows``, waiting at most until the first job has been queued ``batch_wait_seconds``.
Each joining job is claimed in the job store like any other, so its own task, when a worker gets
it later, finds it running or finished and does nothing.

Which job a worker runs first is the job store's choice (``claim_next``: callers take turns), not the
order of the messages: a message is a ticket to run the next job. A job handed back by a failed
batch (``solo``) runs alone: it gathers no batch-mates and joins no batch.
"""

import logging
import time
from dataclasses import dataclass

from core.batching import batch_key, batch_rows
from core.jobs import JobRecord
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores

log = logging.getLogger(__name__)

POLL_SECONDS = 0.01  # how often a waiting worker looks for new batch-mates


@dataclass(frozen=True)
class ClaimedJob:
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
        return None
    return _claimed(job_id, outcome.token, stores)


def _claimed(job_id: str, token: str, stores: Stores) -> ClaimedJob | None:
    record = stores.jobs.get(job_id)
    if record is None:  # expired between the claim and now
        return None
    stores.pending.discard(job_id, record.request)
    return ClaimedJob(record, token)


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
