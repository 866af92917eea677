"""The job store's state machine, against a real (private) Redis."""

import pytest

from core.jobs import FilterResult, InvalidCursor, JobError, JobStore
from core.redis_client import connect
from core.settings import Settings
from core.spec import RenderSpec
from core.stores import Stores

SPEC = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters="0-3", steps=7, size=32)


@pytest.fixture
def jobs(scratch: tuple[Settings, Stores]) -> JobStore:
    return scratch[1].jobs


def claim(jobs: JobStore, job_id: str, worker: str = "w1", max_attempts: int = 3, stale: float = 30.0) -> str:
    result = jobs.claim(job_id, worker, max_attempts, stale)
    assert result.outcome == "claimed" and result.token
    return result.token


def test_a_new_job_is_queued_with_its_normalized_request(jobs: JobStore) -> None:
    record = jobs.create(SPEC)

    assert record.status == "queued"
    assert record.request.filters == [0, 1, 2, 3] and record.request.size == (32, 32)
    assert (record.step, record.steps, record.attempts) == (0, 7, 0)
    assert record.started_at is None and record.finished_at is None
    assert jobs.get(record.id) == record


def test_unknown_and_malformed_ids_are_not_found(jobs: JobStore) -> None:
    assert jobs.get("0" * 32) is None
    assert jobs.get("../../etc/passwd") is None
    assert jobs.cancel("not-an-id") == "missing"
    assert jobs.claim("0" * 32, "w1", 3, 30).outcome == "missing"


def test_claim_runs_a_job_once_and_answers_duplicates_without_change(jobs: JobStore) -> None:
    job_id = jobs.create(SPEC).id
    claim(jobs, job_id, worker="w1")
    running = jobs.get(job_id)

    assert running.status == "running" and running.worker == "w1" and running.attempts == 1
    assert jobs.running_ids() == [job_id]
    assert jobs.claim(job_id, "w2", 3, 30).outcome == "busy"
    assert jobs.get(job_id) == running


def test_progress_and_results_are_accepted_from_the_owner_only(jobs: JobStore) -> None:
    job_id = jobs.create(SPEC).id
    token = claim(jobs, job_id)

    assert jobs.beat(job_id, token, 3, 7) == "ok"
    assert jobs.beat(job_id, "someone-else", 5, 7) == "lost"
    assert jobs.get(job_id).step == 3
    assert (jobs.check(job_id, token), jobs.check(job_id, "someone-else")) == ("ok", "lost")

    results = [FilterResult(filter=0, activation=2.5, start_activation=0.5)]
    assert not jobs.succeed(job_id, "someone-else", results, "cpu", {})
    assert jobs.succeed(job_id, token, results, "cpu", {"optimize": 1.0})
    done = jobs.get(job_id)
    assert done.status == "succeeded" and done.results == results and done.finished_at >= done.started_at
    assert jobs.running_ids() == []
    assert not jobs.fail(job_id, token, JobError(type="X", message="too late"))
    assert jobs.claim(job_id, "w2", 3, 30).outcome == "finished"


def test_a_silent_job_is_requeued_and_its_first_owner_is_shut_out(jobs: JobStore) -> None:
    job_id = jobs.create(SPEC).id
    first = claim(jobs, job_id, worker="w1")

    assert not jobs.requeue_if_stale(job_id, stale_after_seconds=30)
    assert jobs.requeue_if_stale(job_id, stale_after_seconds=0)
    assert jobs.get(job_id).status == "queued" and jobs.running_ids() == []

    second = claim(jobs, job_id, worker="w2")
    assert jobs.beat(job_id, first) == "lost"
    assert not jobs.succeed(job_id, first, [], "cpu", {})
    assert jobs.get(job_id).attempts == 2 and jobs.get(job_id).worker == "w2"
    assert jobs.mark_canceled(job_id, second)


def test_a_redelivered_job_whose_worker_went_silent_is_taken_over(jobs: JobStore) -> None:
    job_id = jobs.create(SPEC).id
    claim(jobs, job_id, worker="w1")

    assert jobs.claim(job_id, "w2", 3, stale_after_seconds=0).outcome == "claimed"
    assert jobs.get(job_id).worker == "w2"


def test_a_job_fails_with_a_reason_after_max_attempts(jobs: JobStore) -> None:
    job_id = jobs.create(SPEC).id
    for _ in range(2):
        claim(jobs, job_id, max_attempts=2)
        assert jobs.requeue_if_stale(job_id, 0)

    assert jobs.claim(job_id, "w3", 2, 30).outcome == "exhausted"
    failed = jobs.get(job_id)
    assert failed.status == "failed" and failed.error.type == "WorkerLost"
    assert failed.error.message == "gave up after 2 attempts: the worker running this job stopped each time"
    assert jobs.running_ids() == []


def test_cancel_stops_a_queued_job_at_once_and_asks_a_running_one(jobs: JobStore) -> None:
    queued = jobs.create(SPEC).id
    assert jobs.cancel(queued) == "canceled"
    assert jobs.get(queued).status == "canceled"
    assert jobs.claim(queued, "w1", 3, 30).outcome == "finished"

    running = jobs.create(SPEC).id
    token = claim(jobs, running)
    assert jobs.cancel(running) == "requested"
    assert jobs.get(running).cancel_requested and jobs.get(running).status == "running"
    before = jobs.get(running)
    assert jobs.check(running, token) == "cancel"
    assert jobs.get(running) == before  # a check writes nothing
    assert jobs.beat(running, token, 1, 7) == "cancel"
    assert jobs.mark_canceled(running, token)
    assert jobs.cancel(running) == "finished"


def test_a_cancel_requested_job_whose_worker_died_ends_canceled(jobs: JobStore) -> None:
    job_id = jobs.create(SPEC).id
    claim(jobs, job_id)
    jobs.cancel(job_id)

    assert jobs.claim(job_id, "w2", 3, stale_after_seconds=0).outcome == "canceled"
    assert jobs.get(job_id).status == "canceled"


def test_pages_run_newest_first_and_cover_every_job_once(jobs: JobStore) -> None:
    created = [jobs.create(SPEC).id for _ in range(5)]
    seen, cursor = [], None
    for expected_size in (2, 2, 1):
        page, cursor = jobs.page(2, cursor)
        assert len(page) == expected_size
        seen += [record.id for record in page]
    assert cursor is None
    assert seen == created[::-1]


def test_records_expire_after_the_retention_time_and_leave_the_listing(
    jobs: JobStore, scratch: tuple[Settings, Stores]
) -> None:
    settings, _ = scratch
    redis = connect(settings.redis_url)
    kept, canceled, expired = (jobs.create(SPEC).id for _ in range(3))
    jobs.cancel(canceled)

    assert 0 < redis.ttl(f"filterviz:job:{kept}") <= settings.retention_seconds
    redis.delete(f"filterviz:job:{expired}")  # as its TTL would
    assert [r.id for r in jobs.page(10, status="canceled")[0]] == [canceled]
    assert [r.id for r in jobs.page(10)[0]] == [canceled, kept]
    assert redis.zscore("filterviz:jobs", expired) is None


def test_a_cursor_not_handed_out_is_refused(jobs: JobStore) -> None:
    for cursor in ("garbage", "Zm9vOmJhcg"):  # the second is base64 of "foo:bar"
        with pytest.raises(InvalidCursor, match="is not one this service handed out"):
            jobs.page(2, cursor)
