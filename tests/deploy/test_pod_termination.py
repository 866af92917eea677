"""A worker pod stopped the way Kubernetes stops it: SIGTERM, then SIGKILL once the grace period is over.

With a grace period above the job's time limit (deploy/k8s/worker.yaml) SIGTERM alone ends it: the
job finishes (tests/e2e/test_worker_sigterm.py). Here the job outlasts a short grace period, as on a
preempted machine: the job is handed back (queued again once its heartbeat is stale) and another
worker finishes it; it is never left running, nor failed.
"""

import signal
import time
from pathlib import Path

from api.dispatch import Dispatcher
from core.spec import RenderSpec
from core.store import Stores
from core.store.connection import connect
from testkit.services import service_settings_for, settings_env, start_worker, wait_until
from tests.deploy.deploy_files import keda_length
from tests.service_fixtures import redis_db

LONG = RenderSpec(model="efficientnet_lite0", layer="blocks.1", filters="0-1", steps=1000, size=32)  # ~8 s here
GRACE_SECONDS = 1.0


def test_a_job_outliving_the_grace_period_is_handed_back_and_finished_by_another_worker(
    redis_server: str, tmp_path: Path
) -> None:
    settings = service_settings_for(redis_db(redis_server, 4), tmp_path)  # a Redis database of its own
    connect(settings.redis_url).flushdb()
    env = settings_env(settings, tmp_path / "torch")
    stores = Stores.from_settings(settings)
    job_id = stores.jobs.create(LONG).id

    pod = start_worker(settings, env, "pod@test", tmp_path)
    try:
        Dispatcher(settings.redis_url).render(job_id)
        wait_until(lambda: stores.jobs.get(job_id).step > 0, 300, "the job to make progress")
        pod.popen.send_signal(signal.SIGTERM)
        time.sleep(GRACE_SECONDS)
    except BaseException:
        pod.kill()
        raise
    pod.kill()  # the kubelet's SIGKILL, to the whole container

    cut_short = stores.jobs.get(job_id)
    assert cut_short.status == "running" and cut_short.step < LONG.steps, f"not cut short: {cut_short}"
    # KEDA's running-jobs trigger still counts it: a worker is kept (or started) to take it over
    assert keda_length(connect(settings.redis_url), "filterviz:jobs:running") == 1

    successor = start_worker(settings, env, "successor@test", tmp_path)
    try:
        record = wait_until(lambda: (r := stores.jobs.get(job_id)).finished and r, 400, "the successor to finish it")
    finally:
        successor.stop()
    assert record.status == "succeeded" and record.worker == "successor@test" and record.attempts == 2
    assert (record.step, record.steps) == (LONG.steps, LONG.steps)
    assert f"job {job_id}: its worker stopped sending heartbeats; queued again" in successor.log()
    assert stores.jobs.running_ids() == []
