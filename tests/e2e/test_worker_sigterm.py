"""A worker stopped with SIGTERM (docker stop, a Kubernetes rollout) finishes its job and takes no new one."""

import signal
import subprocess
from pathlib import Path

from api.dispatch import Dispatcher
from core.spec import RenderSpec
from core.store import Stores
from core.store.connection import connect
from testkit.services import service_settings_for, settings_env, start_worker, wait_until
from tests.service_fixtures import redis_db

LONG = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters="0-3", steps=40, size=48)
NEXT = RenderSpec(model="efficientnet_lite0", layer="blocks.1", filters=[0], steps=2, size=32)
EXIT_TIMEOUT_SECONDS = 90


def test_sigterm_lets_the_running_job_finish_and_leaves_the_queue_to_the_next_worker(
    redis_server: str, tmp_path: Path
) -> None:
    settings = service_settings_for(redis_db(redis_server, 3), tmp_path)  # a Redis database of its own
    connect(settings.redis_url).flushdb()
    env = settings_env(settings, tmp_path / "torch")
    stores = Stores.from_settings(settings)
    running, waiting = stores.jobs.create(LONG).id, stores.jobs.create(NEXT).id
    dispatcher = Dispatcher(settings.redis_url)

    stopping = start_worker(settings, env, "stopping@test", tmp_path)
    try:
        dispatcher.render(running)
        dispatcher.render(waiting)
        wait_until(lambda: stores.jobs.get(running).step > 0, 60, "the first job to make progress")
        stopping.popen.send_signal(signal.SIGTERM)
        returncode = stopping.popen.wait(EXIT_TIMEOUT_SECONDS)
    except (subprocess.TimeoutExpired, BaseException):
        stopping.kill()
        raise

    finished = stores.jobs.get(running)
    assert returncode == 0 and "Warm shutdown" in stopping.log()
    assert finished.status == "succeeded" and finished.attempts == 1 and finished.worker == "stopping@test"
    assert (finished.step, finished.steps) == (40, 40)
    assert stores.jobs.get(waiting).status == "queued"  # not taken by a worker on its way out

    following = start_worker(settings, env, "following@test", tmp_path)
    try:
        record = wait_until(lambda: (r := stores.jobs.get(waiting)).finished and r, 60, "the next worker")
    finally:
        following.stop()
    assert record.status == "succeeded" and record.worker == "following@test" and record.attempts == 1
