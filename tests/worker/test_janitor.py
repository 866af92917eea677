"""The janitor: a worker that went silent has its job queued again; this worker is listed alive."""

import pytest
from redis import RedisError

from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.connection import connect
from testkit.services import wait_until
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


def test_after_a_redis_outage_live_jobs_get_time_to_beat_again(
    scratch: tuple[Settings, Stores], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, stores = scratch
    settings = settings.model_copy(update={"stale_after_seconds": 0.5, "heartbeat_seconds": 0.05})
    alive, dead = (stores.jobs.create(SPEC).id for _ in range(2))
    token = stores.jobs.claim(alive, "w1@test", 3, 30).token
    stores.jobs.claim(dead, "w2@test", 3, 30)
    redis = connect(settings.redis_url)
    for job_id in (alive, dead):  # both last heard of before Redis went away
        redis.hset(f"filterviz:job:{job_id}", "heartbeat_at", "0")
    outage = {"sweeps": 3}
    stamp = stores.workers.stamp

    def stamp_unless_down(name: str) -> None:
        if outage["sweeps"]:
            outage["sweeps"] -= 1
            raise RedisError("Connection refused")
        stamp(name)

    monkeypatch.setattr(stores.workers, "stamp", stamp_unless_down)
    janitor = Janitor(stores, settings, "w9@test", lambda job_id: None)
    janitor.start()
    try:
        wait_until(lambda: "w9@test" in stores.workers.alive(5), 5, "Redis to be back for the janitor")
        # the live job's worker reconnects too and beats again; the dead one's never does
        wait_until(
            lambda: stores.jobs.beat(alive, token) == "ok" and stores.jobs.get(dead).status == "queued",
            5,
            "the dead worker's job to be requeued",
            interval=0.1,
        )
    finally:
        janitor.stop()
    assert stores.jobs.get(alive).status == "running"


def test_a_sweep_sends_the_message_of_a_job_the_api_never_sent(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    lost, sent_by_api = (stores.jobs.create(SPEC).id for _ in range(2))
    stores.jobs.mark_dispatched(sent_by_api)
    sent: list[str] = []
    patient = Janitor(stores, settings.model_copy(update={"dispatch_grace_seconds": 3600}), "w9@test", sent.append)
    janitor = Janitor(stores, settings.model_copy(update={"dispatch_grace_seconds": 0.01}), "w9@test", sent.append)

    patient.sweep()
    assert sent == []  # within the grace time the API may still be sending it
    wait_until(lambda: janitor.sweep() == [] and sent, 5, "the sweep to send the lost message")
    janitor.sweep()

    assert sent == [lost]  # once: a message sent is marked so
    assert not stores.jobs.undispatched(lost)
