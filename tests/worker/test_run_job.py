"""run_job, the glue between the job store and the engine, with a scripted stand-in for the engine.

The real engine runs in the end-to-end tests; here each test scripts what render() does (steps,
errors, a client canceling, another worker taking over) and checks what the job record and the
result storage end up holding.
"""

import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from core.errors import UnknownLayer
from core.jobs import JobRecord
from core.settings import Settings
from core.spec import RenderSpec
from core.storage import GRID_PNG, filter_animation, filter_png
from core.stores import Stores
from worker.run import run_job

SPEC = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters=[1, 4], steps=6, size=32)


@dataclass
class ScriptedEngine:
    """Calls on_step once per step; ``during_step`` runs before each, to act as a client, a janitor or a slow GPU."""

    during_step: Callable[[int], None] = lambda step: None
    calls: list[RenderSpec] = field(default_factory=list)
    steps_done: int = 0

    def render(self, spec: RenderSpec, *, on_step: Callable[[int, int], None], **_: object) -> types.SimpleNamespace:
        self.calls.append(spec)
        for step in range(1, spec.steps + 1):
            self.during_step(step)
            self.steps_done = step
            on_step(step, spec.steps)
        filters = [
            types.SimpleNamespace(
                filter=f,
                variant=v,
                png=f"png {f}.{v}".encode(),
                activation=f + 0.5,
                start_activation=0.25,
                dead=f == 4,
                animation=f"webp {f}.{v}".encode() if spec.snapshots else None,
            )  # fmt: skip
            for f in spec.filters
            for v in range(spec.diversity)
        ]
        return types.SimpleNamespace(filters=filters, grid_png=b"grid", device="cpu", seconds={"optimize": 0.1})


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> ScriptedEngine:
    scripted = ScriptedEngine()
    module = types.ModuleType("core.engine")
    module.render = scripted.render  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "core.engine", module)
    return scripted


def run(scratch: tuple[Settings, Stores], spec: RenderSpec = SPEC) -> JobRecord:
    settings, stores = scratch
    job_id = stores.jobs.create(spec).id
    run_job(job_id, stores, settings, worker="w1@test")
    return stores.jobs.get(job_id)


def test_a_job_stores_every_png_then_succeeds(scratch: tuple[Settings, Stores], engine: ScriptedEngine) -> None:
    record = run(scratch)
    results = scratch[1].results

    assert record.status == "succeeded" and record.worker == "w1@test" and record.attempts == 1
    assert (record.step, record.steps) == (6, 6)
    assert [(r.filter, r.activation, r.start_activation, r.dead) for r in record.results] == [
        (1, 1.5, 0.25, False),
        (4, 4.5, 0.25, True),
    ]
    assert results.get(record.id, filter_png(4)) == b"png 4.0" and results.get(record.id, GRID_PNG) == b"grid"
    assert not any(r.animation for r in record.results)
    assert record.device == "cpu" and record.seconds == {"optimize": 0.1}


def test_every_variant_and_animation_is_stored(scratch: tuple[Settings, Stores], engine: ScriptedEngine) -> None:
    record = run(scratch, SPEC.model_copy(update={"diversity": 2, "snapshots": 2}))
    results = scratch[1].results

    assert [(r.filter, r.variant, r.animation) for r in record.results] == [
        (1, 0, True), (1, 1, True), (4, 0, True), (4, 1, True),
    ]  # fmt: skip
    assert results.get(record.id, filter_png(4, 1)) == b"png 4.1"
    assert results.get(record.id, filter_animation(1, 1)) == b"webp 1.1"


def test_a_cancel_stops_the_render_between_steps_and_keeps_no_file(
    scratch: tuple[Settings, Stores], engine: ScriptedEngine
) -> None:
    settings, stores = scratch
    job_id = stores.jobs.create(SPEC.model_copy(update={"steps": 40})).id
    engine.during_step = lambda step: step == 5 and stores.jobs.cancel(job_id)
    stores.results.put(job_id, GRID_PNG, b"left over from an earlier attempt")

    run_job(job_id, stores, settings, worker="w1@test")

    record = stores.jobs.get(job_id)
    assert record.status == "canceled"
    assert engine.steps_done == 5  # stopped right after the step during which the cancel came
    assert not stores.results.exists(job_id, GRID_PNG)


def test_an_engine_error_fails_the_job_with_its_message_and_field(
    scratch: tuple[Settings, Stores], engine: ScriptedEngine
) -> None:
    def refuse(step: int) -> None:
        raise UnknownLayer("unknown layer 'blocks.99' of efficientnet_lite0; valid layers: blocks.0, blocks.1")

    engine.during_step = refuse
    record = run(scratch)

    assert record.status == "failed"
    assert record.error.model_dump() == {
        "type": "UnknownLayer",
        "message": "unknown layer 'blocks.99' of efficientnet_lite0; valid layers: blocks.0, blocks.1",
        "field": "layer",
    }


def test_an_unexpected_error_still_ends_the_job(scratch: tuple[Settings, Stores], engine: ScriptedEngine) -> None:
    engine.during_step = lambda step: 1 / 0
    record = run(scratch)

    assert record.status == "failed" and record.error.type == "InternalError"
    assert record.error.message == "ZeroDivisionError: division by zero"


def test_a_missing_start_image_fails_the_job(scratch: tuple[Settings, Stores], engine: ScriptedEngine) -> None:
    spec = RenderSpec.model_validate({**SPEC.model_dump(), "init": {"type": "image", "image_id": "ab" * 16}})
    record = run(scratch, spec)

    assert record.status == "failed" and record.error.type == "InvalidImage"
    assert "is not stored (any more)" in record.error.message
    assert engine.calls == []


def test_a_duplicate_delivery_of_a_finished_job_does_nothing(
    scratch: tuple[Settings, Stores], engine: ScriptedEngine
) -> None:
    settings, stores = scratch
    record = run(scratch)
    run_job(record.id, stores, settings, worker="w2@test")

    assert len(engine.calls) == 1
    assert stores.jobs.get(record.id) == record


def test_a_job_taken_over_by_another_worker_is_left_to_it(
    scratch: tuple[Settings, Stores], engine: ScriptedEngine
) -> None:
    settings, stores = scratch
    job_id = stores.jobs.create(SPEC.model_copy(update={"steps": 40})).id
    engine.during_step = lambda step: step == 5 and stores.jobs.requeue_if_stale(job_id, 0)
    stores.results.put(job_id, GRID_PNG, b"written by the new owner")

    run_job(job_id, stores, settings, worker="w1@test")

    record = stores.jobs.get(job_id)
    assert record.status == "queued" and record.error is None  # for the next worker, untouched
    assert engine.steps_done == 5
    assert stores.results.get(job_id, GRID_PNG) == b"written by the new owner"


def test_the_heartbeat_goes_on_while_a_single_step_takes_long(
    scratch: tuple[Settings, Stores], engine: ScriptedEngine
) -> None:
    settings, stores = scratch
    job_id = stores.jobs.create(SPEC.model_copy(update={"steps": 1})).id
    beating_for: list[float] = []

    def long_step(step: int) -> None:
        time.sleep(3 * settings.heartbeat_seconds)
        record = stores.jobs.get(job_id)
        beating_for.append((record.heartbeat_at - record.started_at).total_seconds())

    engine.during_step = long_step
    run_job(job_id, stores, settings, worker="w1@test")

    assert beating_for[0] >= 2 * settings.heartbeat_seconds
    assert stores.jobs.get(job_id).status == "succeeded"
