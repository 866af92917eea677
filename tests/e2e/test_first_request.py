"""A new user's first minutes: the README's first request, sent the moment ``/readyz`` says ready, is accepted."""

import time
from pathlib import Path

import httpx

from core.settings import MODEL_NAMES
from filterviz.redis_server import embedded_redis
from filterviz.service import worker_command
from testkit.services import ServiceProcess, service_settings_for, settings_env, start_api

README_JOB = {"model": "efficientnet_lite0", "layer": "blocks.4", "filters": "0-7", "method": "robust"}
START_TIMEOUT_SECONDS = 120.0


def test_the_readme_request_works_as_soon_as_the_service_is_ready(tmp_path: Path) -> None:
    with embedded_redis() as url:
        settings = service_settings_for(url, tmp_path).model_copy(
            update={"models": list(MODEL_NAMES), "max_size": 512}  # every model, the README's model last
        )
        env = settings_env(settings, tmp_path / "torch")
        api, api_url = start_api(env, tmp_path / "api.log")
        worker = ServiceProcess(worker_command(1, name="first@test"), env, tmp_path / "worker.log")
        try:
            with httpx.Client(base_url=api_url, timeout=30) as client:
                loading = _poll_until_ready(client, worker)
                first = _submit_and_cancel(client)
        finally:
            worker.kill()
            api.stop()

    assert first.status_code == 202, first.text
    for answer in loading:  # meanwhile: "not yet" (or already accepted), never "unknown model"
        assert answer.status_code in (202, 503), answer.text
        if answer.status_code == 503:
            assert answer.headers["retry-after"] and answer.json()["type"] == "/problems/not-ready"


def _poll_until_ready(client: httpx.Client, worker: ServiceProcess) -> list[httpx.Response]:
    """Poll /readyz; until it is ready, send the README's request too. Returns those early answers."""
    early: list[httpx.Response] = []
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while client.get("/readyz").status_code != 200:
        assert worker.popen.poll() is None, worker.log()
        assert time.monotonic() < deadline, f"not ready within {START_TIMEOUT_SECONDS} s:\n{worker.log()}"
        early.append(_submit_and_cancel(client))
        time.sleep(0.02)
    return early


def _submit_and_cancel(client: httpx.Client) -> httpx.Response:
    """POST the README's job; one that was accepted is canceled at once (only the answer matters here)."""
    answer = client.post("/v1/jobs", json=README_JOB)
    if answer.status_code == 202:
        client.post(f"/v1/jobs/{answer.json()['id']}/cancel")
    return answer
