"""A worker killed mid-job: another worker finishes the job, once, within seconds (not kombu's minutes)."""

import io
from pathlib import Path

from PIL import Image

from api.dispatch import Dispatcher
from core.spec import RenderSpec
from core.store import Stores
from core.store.connection import connect
from core.store.files import GRID_PNG, filter_png
from testkit.services import service_settings_for, settings_env, start_worker, wait_until
from tests.service_fixtures import redis_db


def test_a_job_whose_worker_is_killed_is_finished_by_another(redis_server: str, tmp_path: Path) -> None:
    settings = service_settings_for(redis_db(redis_server, 2), tmp_path)  # a Redis database of its own
    connect(settings.redis_url).flushdb()
    env = settings_env(settings, tmp_path / "torch")
    stores = Stores.from_settings(settings)
    spec = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters="0-3", steps=20, size=32)
    job_id = stores.jobs.create(spec).id

    doomed = start_worker(settings, env, "doomed@test", tmp_path)
    try:
        Dispatcher(settings.redis_url).render(job_id)
        # killed between its claim and its last step (a fresh pool process first spends seconds importing torch)
        wait_until(lambda: stores.jobs.get(job_id).status == "running", 60, "the first worker to start the job")
    finally:
        doomed.kill()
    assert stores.jobs.get(job_id).status == "running"

    rescuer = start_worker(settings, env, "rescuer@test", tmp_path)
    try:
        record = wait_until(lambda: (r := stores.jobs.get(job_id)).finished and r, 60, "the second worker")
    finally:
        rescuer.stop()

    assert record.status == "succeeded" and record.worker == "rescuer@test" and record.attempts == 2
    assert f"job {job_id}: its worker stopped sending heartbeats; queued again" in rescuer.log()
    names = [GRID_PNG, *map(filter_png, range(4))]
    for name in names:  # whole pictures, whatever the killed attempt had written
        Image.open(io.BytesIO(stores.results.get(job_id, name)), formats=["PNG"]).load()
    assert sorted(stores.results.refs(job_id)) == sorted(names)
    assert [path.name for path in (settings.storage_dir / job_id).iterdir()] == ["pictures"]  # no temporaries
    assert stores.jobs.running_ids() == []
