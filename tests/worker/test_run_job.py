"""run_job, the glue between the job store and the engine, with a scripted stand-in for the engine.

The real engine runs in the end-to-end tests; here each test scripts what render_batch() does (steps,
errors, a client canceling, another worker taking over) and checks what the job record and the
result storage end up holding.
"""

import io
import sys
import time
import types
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

import pytest
from PIL import Image

from core.cache_key import picture_keys
from core.errors import UnknownLayer
from core.jobs import JobRecord
from core.pictures import Picture
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.files import GRID_PNG, filter_animation, filter_png
from worker.run import run_job

SPEC = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters=[1, 4], steps=6, size=32)


def scripted_png(filter_index: int, variant: int) -> bytes:
    """A tiny real PNG, its color telling which picture it is (the worker composes grids from them)."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (filter_index, variant, 7)).save(buffer, format="PNG")
    return buffer.getvalue()


SCRIPTED_WEIGHTS = "scripted.pth:1:1"  # what the scripted engine says of every model's weight file


def scripted_key(spec: RenderSpec, filter_index: int, variant: int) -> str:
    """The real cache key of a picture, from the facts the scripted engine gives."""
    alone = spec.model_copy(update={"filters": [filter_index]})  # a key ignores the other filters asked for
    return picture_keys(alone, spec.layer or "", SCRIPTED_WEIGHTS)[(filter_index, variant)]


@dataclass
class ScriptedEngine:
    """Stands in for core.engine: reports progress and asks which requests to stop once per step;
    ``during_step`` runs before each, to act as a client, a janitor or a slow GPU."""

    during_step: Callable[[int], None] = lambda step: None
    calls: list[list[RenderSpec]] = field(default_factory=list)  # one list of request specs per batch
    steps_done: int = 0

    @staticmethod
    def check_spec(spec: RenderSpec) -> types.SimpleNamespace:
        return types.SimpleNamespace(name=spec.layer)

    @staticmethod
    def weights_identity(*_: object) -> str:
        return SCRIPTED_WEIGHTS

    def render_batch(
        self,
        requests: list[types.SimpleNamespace],
        *,
        on_progress: Callable[[dict[int, tuple[int, int]]], None],
        should_stop: Callable[[], Collection[int]],
        **_: object,
    ) -> Iterator[tuple[int, types.SimpleNamespace]]:
        specs = [request.spec for request in requests]
        self.calls.append(specs)
        steps, stopped = specs[0].steps, set()
        for step in range(1, steps + 1):
            self.during_step(step)
            self.steps_done = step
            on_progress({i: (step, steps) for i in range(len(specs)) if i not in stopped})
            stopped.update(should_stop())
            if len(stopped) == len(specs):
                return
        for index, spec in enumerate(specs):
            if index not in stopped:
                result = types.SimpleNamespace(pictures=self._pictures(spec), device="cpu", seconds={"optimize": 0.1})
                yield index, result

    @staticmethod
    def _pictures(spec: RenderSpec) -> list[Picture]:
        return [
            Picture(
                filter=f,
                variant=v,
                png=scripted_png(f, v),
                activation=f + 0.5,
                start_activation=0.25,
                dead=f == 4,
                animation=bool(spec.snapshots),
                webp=f"webp {f}.{v}".encode() if spec.snapshots else None,
            )
            for f in spec.filters
            for v in range(spec.diversity)
        ]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> ScriptedEngine:
    scripted = ScriptedEngine()
    module = types.ModuleType("core.engine")
    module.check_spec = scripted.check_spec  # type: ignore[attr-defined]
    module.weights_identity = scripted.weights_identity  # type: ignore[attr-defined]
    module.render_batch = scripted.render_batch  # type: ignore[attr-defined]
    module.RenderRequest = lambda spec, init_image=None: types.SimpleNamespace(spec=spec, init_image=init_image)  # type: ignore[attr-defined]
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
    assert results.get(record.id, filter_png(4)) == scripted_png(4, 0)
    assert Image.open(io.BytesIO(results.get(record.id, GRID_PNG))).size == (2 * 8 + 4, 20 + 4)  # 2 tiles, labeled
    assert not any(r.animation for r in record.results)
    assert record.device == "cpu" and record.seconds["optimize"] == 0.1 and "store" in record.seconds


def test_every_variant_and_animation_is_stored(scratch: tuple[Settings, Stores], engine: ScriptedEngine) -> None:
    record = run(scratch, SPEC.model_copy(update={"diversity": 2, "snapshots": 2}))
    results = scratch[1].results

    assert [(r.filter, r.variant, r.animation) for r in record.results] == [
        (1, 0, True),
        (1, 1, True),
        (4, 0, True),
        (4, 1, True),
    ]
    assert results.get(record.id, filter_png(4, 1)) == scripted_png(4, 1)
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
