"""The job store's state machine, against a real (private) Redis."""

import base64

import pytest
from redis import Redis

from core.errors import InvalidCursor
from core.jobs import JobError
from core.pictures import Picture
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.connection import connect
from core.store.jobs import JobStore

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

    results = [Picture(filter=0, activation=2.5, start_activation=0.5)]
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


@pytest.mark.parametrize("score", ["nan", "inf", "-inf", "1e400", "9" * 40, "-5", "1.5e9"])
def test_a_forged_cursor_with_a_score_no_job_has_is_refused(jobs: JobStore, score: str) -> None:
    forged = base64.urlsafe_b64encode(f"{score}:{'0' * 32}".encode()).decode()
    with pytest.raises(InvalidCursor, match="is not one this service handed out"):
        jobs.page(2, forged)


def test_callers_take_turns_oldest_job_first(jobs: JobStore) -> None:
    alice = [jobs.admit(SPEC, caller="alice").job.id for _ in range(3)]
    bob = jobs.admit(SPEC, caller="bob").job.id
    anonymous = jobs.create(SPEC).id

    order = [jobs.claim_next("w1", 3, 30) for _ in range(6)]

    assert [taken[0] for taken in order[:5]] == [anonymous, alice[0], bob, alice[1], alice[2]]
    assert order[5] is None
    assert {jobs.get(job_id).status for job_id, _ in order[:5]} == {"running"}
    assert jobs.beat(alice[0], order[1][1]) == "ok"  # the token is the owner's


def test_the_next_job_skips_canceled_deleted_and_already_claimed_ones(jobs: JobStore) -> None:
    canceled, deleted, batched, waiting = (jobs.create(SPEC).id for _ in range(4))
    jobs.cancel(canceled)
    jobs.delete(deleted)
    claim(jobs, batched)  # taken by name, as a batch-mate is

    assert jobs.claim_next("w1", 3, 30)[0] == waiting
    assert jobs.claim_next("w1", 3, 30) is None


def test_a_job_is_owed_its_message_until_marked_dispatched(jobs: JobStore) -> None:
    sent, lost = jobs.create(SPEC).id, jobs.create(SPEC).id
    jobs.mark_dispatched(sent)

    assert not jobs.undispatched(sent) and jobs.undispatched(lost)
    assert jobs.due_for_dispatch(older_than_seconds=3600) == []  # the API may still be sending it
    assert jobs.due_for_dispatch(older_than_seconds=0) == [lost]
    claim(jobs, lost)
    assert not jobs.undispatched(lost)  # running: nobody needs to send it any more
    assert jobs.requeue_if_stale(lost, stale_after_seconds=0)
    assert jobs.due_for_dispatch(older_than_seconds=0) == [lost]  # queued again: owed a message again


def test_a_released_job_runs_alone_next_without_using_up_an_attempt(jobs: JobStore) -> None:
    job_id = jobs.create(SPEC).id
    jobs.mark_dispatched(job_id)
    token = claim(jobs, job_id)

    assert not jobs.release(job_id, "someone-else")
    assert jobs.release(job_id, token)
    released = jobs.get(job_id)
    assert (released.status, released.solo, released.attempts, released.owner) == ("queued", True, 0, None)
    assert jobs.undispatched(job_id) and jobs.running_ids() == []
    assert jobs.beat(job_id, token) == "lost"
    assert jobs.claim_next("w2", 3, 30)[0] == job_id and jobs.get(job_id).attempts == 1


def test_a_status_lists_its_jobs_across_state_changes_and_pages(jobs: JobStore) -> None:
    ids = [jobs.create(SPEC).id for _ in range(5)]
    token = claim(jobs, ids[1])
    jobs.succeed(ids[1], token, [], "cpu", {})
    claim(jobs, ids[3])
    jobs.cancel(ids[4])
    jobs.delete(ids[0])

    seen, cursor = [], None
    for _ in range(3):
        page, cursor = jobs.page(1, cursor, status="queued")
        seen += [record.id for record in page]
        if cursor is None:
            break
    assert seen == [ids[2]]
    assert [[r.id for r in jobs.page(10, status=s)[0]] for s in ("running", "succeeded", "canceled")] == [
        [ids[3]],
        [ids[1]],
        [ids[4]],
    ]
    assert jobs.page(10, status="queued", caller="alice") == ([], None)


def test_listing_one_status_reads_a_page_not_the_whole_history(
    jobs: JobStore, scratch: tuple[Settings, Stores]
) -> None:
    redis = connect(scratch[0].redis_url)
    queued = [jobs.create(SPEC).id for _ in range(3)]
    for _ in range(300):
        jobs.cancel(jobs.create(SPEC).id)
    redis.delete(f"filterviz:job:{queued[0]}")  # expired, as its TTL would

    before = _record_reads(redis)
    page, cursor = jobs.page(5, status="queued")
    reads = _record_reads(redis) - before

    assert [record.id for record in page] == queued[:0:-1] and cursor is None
    assert reads <= 6, f"{reads} records read for a page of 5"
    assert redis.zscore("filterviz:jobs:status:-:queued", queued[0]) is None  # the expired one left the index


def _record_reads(redis: Redis) -> int:
    return int(redis.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0))
