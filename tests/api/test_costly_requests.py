"""Requests that look small and would cost a lot: each is refused at once, and /healthz keeps answering."""

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from core.store import Stores
from testkit.services import settings_env, start_api
from tests.api_fixtures import CATALOG, AppClient
from tests.responsiveness import HealthProbe
from tests.timing import collector_paused

HUGE_FILTER_SPEC = ",".join(["0-1048576"] * 1000)  # 10 KB of ranges as wide as the old parser allowed
DEFAULT_LIMITS = {
    "max_filters": 256,
    "max_steps": 1000,
    "max_size": 512,
}  # the shipped defaults
BLOCK = {"model": "efficientnet_lite0", "layer": "blocks.2"}
# 240 pictures x 1000 robust steps at 512 px: about 1,900 TFLOP, hours of a worker
HOSTILE_WORK = {
    **BLOCK,
    "filters": "0-39",
    "diversity": 6,
    "method": "robust",
    "steps": 1000,
    "size": 512,
}
# 32 pictures x 1000 frames at 512 px: 24 GB of frames
HOSTILE_FRAMES = {
    **BLOCK,
    "filters": "0-31",
    "steps": 1000,
    "size": 512,
    "snapshots": 1,
}
ATTACK_THREADS, ATTACK_REQUESTS, ATTACK_SECONDS, ATTACK_PAUSE = 1, 50, 1.5, 0.02


@pytest.fixture
def lone_api(scratch: tuple[Settings, Stores], tmp_path: Path) -> Iterator[str]:
    """A real uvicorn on a scratch Redis with the test catalog (no worker: these requests never reach one)."""
    settings, stores = scratch
    stores.catalog.publish(CATALOG)
    settings = settings.model_copy(update=DEFAULT_LIMITS)
    process, url = start_api(settings_env(settings, tmp_path / "torch"), tmp_path / "api.log")
    try:
        yield url
    finally:
        process.stop()


def attack(url: str, body: dict) -> list[tuple[int, float, dict]]:
    """POST ``body`` from a few threads, paced, for about ATTACK_SECONDS: (status, seconds, answer) of each.

    Paced so that what is judged is the cost of each request, not a flood's queue; timed with the test
    process's collector paused, so that what is judged is the API."""
    answers: list[tuple[int, float, dict]] = []
    deadline = time.monotonic() + ATTACK_SECONDS

    def send() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(ATTACK_REQUESTS):
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                response = client.post(
                    "/v1/jobs",
                    content=json.dumps(body),
                    headers={"content-type": "application/json"},
                )
                answers.append(
                    (
                        response.status_code,
                        time.perf_counter() - started,
                        response.json(),
                    )
                )
                time.sleep(ATTACK_PAUSE)

    threads = [threading.Thread(target=send) for _ in range(ATTACK_THREADS)]
    with collector_paused():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
    return answers


def test_a_10kb_filter_spec_of_huge_ranges_is_refused_at_once_and_healthz_answers(
    lone_api: str,
) -> None:
    body = {
        "model": "efficientnet_lite0",
        "layer": "blocks.2",
        "filters": HUGE_FILTER_SPEC,
    }
    with HealthProbe(lone_api) as probe:
        answers = attack(lone_api, body)

    assert answers and all(status == 422 for status, _, _ in answers), (
        probe.worst,
        answers[:1],
    )
    assert max(seconds for _, seconds, _ in answers) < 0.5, (probe.worst, answers[:1])
    error = answers[0][2]["errors"][0]
    assert error["loc"][:2] == ["body", "filters"] and "at most" in error["msg"], error
    probe.assert_responsive()


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        (HOSTILE_WORK, ["body"], "at most 250 TFLOP per job (FILTERVIZ_MAX_JOB_TFLOP)"),
        (HOSTILE_FRAMES, ["body", "snapshots"], "at most 4096 MB per job (FILTERVIZ_MEMORY_BUDGET_MB)"),
    ],
    ids=["work", "frames"],
)
def test_a_job_beyond_the_per_job_limits_is_refused_at_once_and_healthz_answers(
    lone_api: str, body: dict, loc: list[str], words: str
) -> None:
    with HealthProbe(lone_api) as probe:
        answers = attack(lone_api, body)

    assert answers and all(status == 422 for status, _, _ in answers), answers[:1]
    assert max(seconds for _, seconds, _ in answers) < 0.5
    error = answers[0][2]["errors"][0]
    assert error["loc"] == loc and words in error["msg"], error
    probe.assert_responsive()


def test_the_estimate_names_the_work_and_admits_the_seeds_workload(
    app_client: AppClient,
) -> None:
    client = app_client(**DEFAULT_LIMITS)
    refused = client.post("/v1/jobs", json=HOSTILE_WORK).json()["errors"][0]["msg"]
    assert refused.startswith(
        "this job is about 1,876.3 TFLOP of work (240 pictures x 1000 steps x 2 views through blocks.2 at 536x536)"
    ), refused

    seed_like = {**BLOCK, "filters": "0-19", "steps": 20, "size": 128}
    readme = {**BLOCK, "filters": "0-7", "method": "robust"}
    assert client.post("/v1/jobs", json=seed_like).status_code == 202
    assert client.post("/v1/jobs", json=readme).status_code == 202


def test_a_smaller_cap_or_budget_is_the_deployments_to_set(
    app_client: AppClient,
) -> None:
    body = {**BLOCK, "filters": "0-7", "steps": 100, "size": 64, "snapshots": 1}
    assert app_client().post("/v1/jobs", json=body).status_code == 202
    assert app_client(max_job_tflop=0.01).post("/v1/jobs", json=body).json()["errors"][0]["type"] == "too_much_work"
    frames = app_client(memory_budget_mb=64).post("/v1/jobs", json={**body, "steps": 3000}).json()["errors"]
    assert [error["type"] for error in frames] == ["too_much_memory"], frames
