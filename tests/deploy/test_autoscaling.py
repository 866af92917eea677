"""The ScaledObject's keys count what they claim to, in a real Redis, the way KEDA's redis scaler counts."""

import time

from api.dispatch import Dispatcher
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.connection import connect
from tests.deploy.deploy_files import k8s_resource, keda_length

SPEC = RenderSpec(model="efficientnet_lite0", layer="blocks.1", filters=[0], steps=2, size=32)


def _metrics(settings: Settings) -> dict[str, int]:
    """Each trigger's value as KEDA reads it."""
    redis = connect(settings.redis_url or "")
    triggers = k8s_resource("ScaledObject", "filterviz-worker")["spec"]["triggers"]
    return {trigger["name"]: keda_length(redis, trigger["metadata"]["listName"]) for trigger in triggers}


def test_the_workers_scale_on_jobs_waiting_and_keep_one_while_jobs_run(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    assert _metrics(settings) == {"queued-jobs": 0, "running-jobs": 0, "layer-questions": 0}

    ids = [stores.jobs.create(SPEC).id for _ in range(3)]  # their messages not sent yet: still work waiting
    assert _metrics(settings) == {"queued-jobs": 3, "running-jobs": 0, "layer-questions": 0}

    claimed = stores.jobs.claim_next("w@test", settings.max_attempts, settings.stale_after_seconds)
    assert claimed is not None and claimed[0] in ids
    assert _metrics(settings) == {"queued-jobs": 2, "running-jobs": 1, "layer-questions": 0}

    time.sleep(0.05)  # its worker dies: silent for longer than the stale time below
    assert stores.jobs.requeue_if_stale(claimed[0], 0.01)
    assert _metrics(settings) == {"queued-jobs": 3, "running-jobs": 0, "layer-questions": 0}

    stores.jobs.cancel(ids[0])
    assert _metrics(settings)["queued-jobs"] == 2


def test_a_layer_question_for_the_workers_is_counted(scratch: tuple[Settings, Stores]) -> None:
    settings, _ = scratch
    Dispatcher(settings.redis_url or "").describe("efficientnet_lite0", (100, 100), expires_seconds=30)
    assert _metrics(settings)["layer-questions"] == 1
