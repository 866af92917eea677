"""A job of several layers in the worker, with the scripted engine (tests.worker.test_run_job): one engine
request per layer in the batch it shares with batch-mates, its files named per layer, a grid per layer."""

import io

from PIL import Image

from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.files import filter_png, grid_png
from tests.worker.test_run_job import SPEC, ScriptedEngine, engine, scripted_png  # noqa: F401 (engine: a fixture)
from worker.run import run_job

SEVERAL = RenderSpec.model_validate(
    {
        **SPEC.model_dump(exclude={"layer", "filters"}),
        "layers": [{"layer": "blocks.2", "filters": [1, 4]}, {"layer": "blocks.1", "filters": [0]}],
    }
)


def test_each_layer_is_a_request_of_one_batch_with_a_grid_of_its_own(
    scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = scratch
    several = stores.jobs.create(SEVERAL).id
    mate = stores.jobs.create(SPEC.model_copy(update={"filters": [4, 5]})).id  # shares blocks.2's filter 4

    run_job(several, stores, settings, worker="w1@test")

    blocks_2, blocks_1 = SEVERAL.parts()
    assert engine.calls == [[blocks_2, blocks_1, SPEC.model_copy(update={"filters": [5]})]]  # one batch
    record = stores.jobs.get(several)
    assert record.status == "succeeded" and (record.step, record.steps) == (12, 12)  # two requests of 6 steps
    assert [(r.layer, r.filter) for r in record.results] == [("blocks.2", 1), ("blocks.2", 4), ("blocks.1", 0)]
    refs = stores.results.refs(several)
    assert sorted(refs) == sorted(
        [filter_png(1, 0, 0), filter_png(4, 0, 0), grid_png(0), filter_png(0, 0, 1), grid_png(1)]
    )
    assert stores.results.get(several, filter_png(0, 0, 1)) == scripted_png(0, 0)
    sheets = [Image.open(io.BytesIO(stores.results.get(several, grid_png(part)) or b"")) for part in (0, 1)]
    assert [sheet.size for sheet in sheets] == [(2 * 8 + 4, 20 + 4), (8 + 4, 20 + 4)]  # 2 tiles, then 1
    assert [(r.layer, r.filter) for r in stores.jobs.get(mate).results] == [("blocks.2", 4), ("blocks.2", 5)]
    assert stores.results.get(mate, filter_png(4)) == stores.results.get(several, filter_png(4, 0, 0))
