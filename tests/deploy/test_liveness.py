"""`python -m worker.liveness`, the workers' probe: 0 while the worker's stamp is fresh, else 1."""

import os
import socket
import subprocess
import sys
import time

from core.settings import Settings
from core.store import Stores
from filterviz.redis_server import free_port


def _probe(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FILTERVIZ_REDIS_URL": redis_url}
    command = [sys.executable, "-m", "worker.liveness", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)


def test_a_freshly_stamped_worker_is_live(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    stores.workers.stamp("w@test")
    probe = _probe(settings.redis_url or "", "--name", "w@test")
    assert (probe.returncode, probe.stdout) == (0, "live: w@test\n")


def test_the_default_name_is_the_one_celery_gives_a_worker_without_one(scratch: tuple[Settings, Stores]) -> None:
    """`filterviz worker` without --name registers as celery@<hostname> (in a pod: the pod's name); %h expands alike."""
    settings, stores = scratch
    stores.workers.stamp(f"celery@{socket.gethostname()}")
    assert _probe(settings.redis_url or "").returncode == 0
    assert _probe(settings.redis_url or "", "--name", "celery@%h").returncode == 0
    assert _probe(settings.redis_url or "", "--name", "other@%h").returncode == 1


def test_a_worker_never_stamped_is_not_live(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    stores.workers.stamp("another@test")
    probe = _probe(settings.redis_url or "", "--name", "w@test")
    assert probe.returncode == 1
    within = Settings.model_fields["stale_after_seconds"].default  # the probe's default: the janitors' stale time
    assert probe.stderr == f"not live: w@test has not stamped itself alive in the last {within:g} s\n"


def test_a_stale_stamp_is_not_live(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    stores.workers.stamp("w@test")
    time.sleep(1.0)
    probe = _probe(settings.redis_url or "", "--name", "w@test", "--within", "0.5")
    assert probe.returncode == 1 and "in the last 0.5 s" in probe.stderr
    assert _probe(settings.redis_url or "", "--name", "w@test", "--within", "60").returncode == 0


def test_a_worker_that_cannot_reach_redis_is_not_live() -> None:
    probe = _probe(f"redis://127.0.0.1:{free_port()}/0", "--name", "w@test")
    assert probe.returncode == 1 and probe.stderr.startswith("not live: Redis does not answer:")
