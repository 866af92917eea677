"""The API process and the worker's parent process never import torch or the engine."""

import json
import subprocess
import sys

API_AND_WORKER_PARENT = "api.app, api.routes.jobs, worker.entrypoint, worker.tasks, worker.lifecycle, worker.run"


def torch_modules_after_importing(modules: str) -> list[str]:
    probe = (
        f"import sys, json, {modules}; "
        "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith('core.engine'))))"
    )
    env = {"FILTERVIZ_REDIS_URL": "redis://127.0.0.1:1/0"}  # worker.entrypoint builds its Celery app at import
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_api_and_worker_parent_modules_stay_free_of_torch() -> None:
    assert torch_modules_after_importing(API_AND_WORKER_PARENT) == []
    assert "torch" in torch_modules_after_importing("core.engine")  # the probe would see it
