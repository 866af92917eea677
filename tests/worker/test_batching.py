"""Cross-request batching and the result cache in the worker: which jobs share a batch, what is
rendered (once), what comes from the cache, and that one job's cancel leaves its batch-mates whole.

Most tests script the engine (tests.worker.test_run_job); the last ones run the real one.
"""

import io
import threading
import time

import numpy as np
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image

from core.batching import batch_key
from core.jobs import JobRecord
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.files import GRID_PNG, filter_png
from tests.worker.test_run_job import SPEC, ScriptedEngine, engine, scripted_png  # noqa: F401 (engine: a fixture)
from worker import monitor
from worker.run import claim, gather, run_job


def queue(stores: Stores, spec: RenderSpec) -> str:
    """A job as the API files it: a record, and its place among the pending jobs of its batch key."""
    return stores.jobs.create(spec).id


def records(stores: Stores, ids: list[str]) -> list[JobRecord]:
    return [stores.jobs.get(job_id) for job_id in ids]


def test_queued_compatible_jobs_share_one_batch_and_their_own_tasks_then_leave_them_alone(
    scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = scratch
    mates = [SPEC, SPEC.model_copy(update={"layer": "blocks.3", "filters": [7]}), SPEC.model_copy(update={"seed": 9})]
    ids = [queue(stores, spec) for spec in mates]
    other = queue(stores, SPEC.model_copy(update={"steps": 7}))  # another batch key

    run_job(ids[0], stores, settings, worker="w1@test")

    assert engine.calls == [mates]  # one batch, one engine request per job
    assert [r.status for r in records(stores, ids)] == ["succeeded"] * 3
    assert stores.jobs.get(other).status == "queued"
    assert [r.filter for r in stores.jobs.get(ids[1]).results] == [7]
    assert stores.results.get(ids[1], filter_png(7)) == scripted_png(7, 0)
    before = records(stores, ids)
    run_job(ids[1], stores, settings, worker="w2@test")  # its own task, delivered later: a ticket for the next job
    assert records(stores, ids) == before
    assert engine.calls[1:] == [[stores.jobs.get(other).request]] and stores.jobs.get(other).status == "succeeded"
    run_job(ids[2], stores, settings, worker="w2@test")  # nothing is queued any more: it does nothing
    assert records(stores, ids) == before and len(engine.calls) == 2
    stats = stores.render_stats.read()
    assert (stats.batches, stats.batch_jobs, stats.batch_rows, stats.average_batch_jobs) == (2, 4, 7, 2.0)
    assert 0 <= stats.average_queue_seconds < 5


def test_a_batch_takes_queued_jobs_only_while_their_rows_fit(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    settings = settings.model_copy(update={"batch_max_rows": 3, "batch_wait_seconds": 0})
    ids = [queue(stores, SPEC.model_copy(update={"filters": filters})) for filters in ([1, 2], [3], [4, 5])]

    batch = gather(claim(ids[0], stores, settings, "w1@test"), stores, settings, "w1@test")

    assert [job.id for job in batch] == ids[:2]
    assert stores.jobs.get(ids[2]).status == "queued"
    assert stores.pending.pop(batch_key(SPEC))[0] == ids[2]  # left in line for the next batch


def test_the_wait_window_lets_a_job_submitted_a_moment_later_join(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    settings = settings.model_copy(update={"batch_wait_seconds": 0.6})
    first = claim(queue(stores, SPEC), stores, settings, "w1@test")
    later = threading.Timer(0.1, lambda: queue(stores, SPEC.model_copy(update={"seed": 5})))
    later.start()
    started = time.monotonic()

    batch = gather(first, stores, settings, "w1@test")

    later.join()
    assert len(batch) == 2 and batch[1].spec.seed == 5
    assert 0.5 <= time.monotonic() - started + first.queued_seconds < 2  # it waited out the window, no longer


def test_a_submitted_job_is_filed_for_batching_by_the_api(app_client, scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    client = app_client()
    spec = {"model": "efficientnet_lite0", "layer": "blocks.2", "size": 32, "steps": 3}
    ids = [client.post("/v1/jobs", json={**spec, "filters": [f]}).json()["id"] for f in (1, 2)]

    batch = gather(claim(ids[0], stores, settings, "w1@test"), stores, settings, "w1@test")

    assert [job.id for job in batch] == ids


def test_a_repeated_job_is_answered_from_the_cache_without_rendering(
    scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = scratch
    first, again = (queue(stores, SPEC) for _ in range(2))
    run_job(first, stores, settings, worker="w1@test")  # takes the second along: a batch of two ...
    assert [len(call) for call in engine.calls] == [1]  # ... rendering the pictures once
    third = queue(stores, SPEC)
    run_job(third, stores, settings, worker="w1@test")

    assert len(engine.calls) == 1
    done = records(stores, [first, again, third])
    assert [r.status for r in done] == ["succeeded"] * 3 and done[2].device == "cache"
    assert done[0].results == done[1].results == done[2].results
    assert (done[2].step, done[2].steps) == (SPEC.steps, SPEC.steps)
    for name in (filter_png(1), filter_png(4), GRID_PNG):
        assert stores.results.get(first, name) == stores.results.get(third, name) is not None
    stats = stores.render_stats.read()
    assert (stats.pictures_rendered, stats.pictures_cached) == (2, 4)


def test_an_overlapping_job_renders_only_its_missing_filters(
    scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = scratch
    run_job(queue(stores, SPEC), stores, settings, worker="w1@test")  # filters 1 and 4
    wider = queue(stores, SPEC.model_copy(update={"filters": [1, 2, 4, 5]}))
    run_job(wider, stores, settings, worker="w1@test")

    assert [[spec.filters for spec in call] for call in engine.calls] == [[[1, 4]], [[2, 5]]]
    record = stores.jobs.get(wider)
    assert [r.filter for r in record.results] == [1, 2, 4, 5] and record.device == "cpu"
    for f in (1, 2, 4, 5):
        assert stores.results.get(wider, filter_png(f)) == scripted_png(f, 0)


def test_a_canceled_job_leaves_its_batch_but_its_pictures_are_rendered_for_a_batch_mate(
    scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = scratch
    alone, canceled, sharing = (queue(stores, SPEC.model_copy(update={"filters": f})) for f in ([1], [4], [4, 5]))
    engine.during_step = lambda step: step == 2 and stores.jobs.cancel(canceled)

    run_job(alone, stores, settings, worker="w1@test")

    assert [[spec.filters for spec in call] for call in engine.calls] == [[[1], [4], [5]]]  # 4 rendered once
    assert [r.status for r in records(stores, [alone, canceled, sharing])] == ["succeeded", "canceled", "succeeded"]
    assert canceled not in stores.results.keys()
    assert stores.results.get(sharing, filter_png(4)) == scripted_png(4, 0)


# -- the real engine ---------------------------------------------------------------------------


def pixels_of(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_canceling_one_job_of_a_real_batch_leaves_the_others_as_they_would_be_alone(
    scratch: tuple[Settings, Stores], monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.engine import render

    settings, stores = scratch
    base = {"model": "efficientnet_lite0", "size": 32, "steps": 6}
    specs = [
        RenderSpec(layer="blocks.1", filters="0-1", seed=1, **base),
        RenderSpec(layer="blocks.1", filters="2", seed=2, **base),
        RenderSpec(layer="blocks.2", filters="3", seed=3, **base),
    ]
    ids = [queue(stores, spec) for spec in specs]
    real_report = monitor.BatchMonitor.report

    def cancel_the_second_at_step_two(self, progress):
        if progress.get(ids[1]) == (2, 6):
            stores.jobs.cancel(ids[1])
        real_report(self, progress)

    monkeypatch.setattr(monitor.BatchMonitor, "report", cancel_the_second_at_step_two)
    run_job(ids[0], stores, settings, worker="w1@test")

    assert [r.status for r in records(stores, ids)] == ["succeeded", "canceled", "succeeded"]
    for job_id, spec in ((ids[0], specs[0]), (ids[2], specs[2])):
        alone = render(spec, device="cpu")
        for item, result in zip(alone.pictures, stores.jobs.get(job_id).results, strict=True):
            stored = pixels_of(stores.results.get(job_id, filter_png(item.filter)))
            assert np.abs(stored - pixels_of(item.png)).mean() < 1.5
            assert result.activation == pytest.approx(item.activation, rel=1e-2, abs=1e-3)
    assert stores.render_stats.read().batch_jobs == 3


def test_a_batch_that_runs_out_of_time_fails_only_the_job_that_runs_out_of_time_alone(
    scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = scratch
    small, big = queue(stores, SPEC.model_copy(update={"filters": [2]})), queue(stores, SPEC)
    big_spec = stores.jobs.get(big).request

    def time_runs_out_with_the_big_job(step: int) -> None:
        if step == 3 and any(spec.filters == big_spec.filters for spec in engine.calls[-1]):
            raise SoftTimeLimitExceeded()

    engine.during_step = time_runs_out_with_the_big_job
    sent: list[str] = []
    run_job(small, stores, settings, worker="w1@test", send_render=sent.append)

    assert sorted(sent) == sorted([small, big])
    assert [(r.status, r.solo, r.attempts) for r in records(stores, [small, big])] == [("queued", True, 0)] * 2
    assert not any(stores.jobs.undispatched(job_id) for job_id in sent)
    for job_id in sent:  # their tickets: each job runs alone now
        run_job(job_id, stores, settings, worker="w1@test", send_render=sent.append)

    assert [[spec.filters for spec in call] for call in engine.calls] == [[[2], [1, 4]], [[2]], [[1, 4]]]
    done_small, done_big = records(stores, [small, big])
    assert (done_small.status, done_small.attempts) == ("succeeded", 1)
    assert (done_big.status, done_big.error.type, done_big.attempts) == ("failed", "TimeLimitExceeded", 1)
    assert len(sent) == 2  # a job alone is not handed back
