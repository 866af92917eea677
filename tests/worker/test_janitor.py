"""The janitor: a worker that went silent has its job queued again; this worker is listed alive."""

from core.redis_client import connect
from core.settings import Settings
from core.spec import RenderSpec
from core.stores import Stores
from tests.service_fixtures import wait_until
from worker.janitor import Janitor

SPEC = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters=[0], steps=3, size=32)


def test_a_sweep_requeues_only_jobs_whose_heartbeat_is_stale(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    silent, beating = (stores.jobs.create(SPEC).id for _ in range(2))
    stores.jobs.claim(silent, "dead@test", 3, 30)
    stores.jobs.claim(beating, "alive@test", 3, 30)
    sent: list[str] = []
    janitor = Janitor(stores, settings.model_copy(update={"stale_after_seconds": 0.2}), "w9@test", sent.append)

    connect(settings.redis_url).hset(f"filterviz:job:{silent}", "heartbeat_at", "0")  # last heard of in 1970
    assert janitor.sweep() == [silent]

    assert sent == [silent]
    assert stores.jobs.get(silent).status == "queued"
    assert stores.jobs.get(beating).status == "running"
    assert "w9@test" in stores.workers.alive(5)


def test_a_stopped_janitor_unlists_its_worker(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    janitor = Janitor(stores, settings, "w9@test", lambda job_id: None)
    janitor.start()
    wait_until(lambda: "w9@test" in stores.workers.alive(60), 5, "the janitor's first sweep")
    janitor.stop()

    assert stores.workers.alive(60) == []
