"""``GET /v1/models/{name}/layers?size=N`` at sizes nobody asked before: a worker is asked, and the API waits.

The waits run against a real uvicorn on a Redis of its own, with the catalog published and no worker
consuming the questions, so the test decides when (and whether) an answer arrives.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.catalog import LayerAnswer
from core.queues import META_QUEUE
from core.settings import Settings
from core.store import Stores
from core.store.connection import connect
from filterviz.redis_server import embedded_redis
from testkit.services import service_settings_for, settings_env, start_api
from tests.api_fixtures import BLOCK, CATALOG, AppClient
from tests.responsiveness import HealthProbe

WAIT_SECONDS = 2.0
LAYERS_URL = f"/v1/models/{CATALOG.name}/layers"


@pytest.fixture
def question_api(tmp_path: Path) -> Iterator[tuple[str, Settings, Stores]]:
    """A real API whose questions to workers go unanswered unless the test stores an answer."""
    with embedded_redis() as url:
        settings = service_settings_for(url, tmp_path).model_copy(update={"describe_timeout_seconds": WAIT_SECONDS})
        stores = Stores.from_settings(settings)
        stores.catalog.publish(CATALOG)
        process, api_url = start_api(settings_env(settings, tmp_path / "torch"), tmp_path / "api.log")
        try:
            yield api_url, settings, stores
        finally:
            process.stop()


async def _ask(api_url: str, sizes: list[int], answers: dict[int, LayerAnswer], stores: Stores) -> list[httpx.Response]:
    """Every ``?size=`` question at once; the ``answers`` arrive (as a worker's would) half a second in."""

    async def answer_later() -> None:
        await asyncio.sleep(0.5)
        for side, answer in answers.items():
            await asyncio.to_thread(stores.catalog.store_layers, CATALOG.name, (side, side), answer)

    limits = httpx.Limits(max_connections=len(sizes), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=api_url, timeout=30, limits=limits) as http:
        asked = [http.get(LAYERS_URL, params={"size": side}) for side in sizes]
        *responses, _ = await asyncio.gather(*asked, answer_later())
    return responses


def test_waiting_for_workers_holds_no_thread_and_identical_questions_share_one_wait(
    question_api: tuple[str, Settings, Stores],
) -> None:
    api_url, settings, stores = question_api
    sides = [20, 24, 28, 32, 36, 40, 44, 48]  # not published up front, so each is a question for a worker
    answered = {side: LayerAnswer(layers=[BLOCK]) for side in sides[:4]}

    with HealthProbe(api_url) as probe:
        responses = asyncio.run(_ask(api_url, sides * 10, answered, stores))
    probe.assert_responsive()

    by_status: dict[int, list[httpx.Response]] = {}
    for response in responses:
        by_status.setdefault(response.status_code, []).append(response)
    assert sorted(by_status) == [200, 503] and len(by_status[200]) == len(by_status[503]) == 40
    for response in by_status[200]:
        assert int(response.request.url.params["size"]) in answered
        assert response.json()["layers"] == [BLOCK.model_dump(mode="json")]
    for response in by_status[503]:
        side = response.request.url.params["size"]
        assert response.headers["retry-after"] == "5"
        detail = f"no worker listed the layers of {CATALOG.name} at {side}x{side} within {WAIT_SECONDS:g} s"
        assert response.json()["detail"] == detail
    assert connect(settings.redis_url).llen(META_QUEUE) == len(sides)  # one question per size, not 80


def test_too_many_distinct_questions_at_once_are_refused_at_once(question_api: tuple[str, Settings, Stores]) -> None:
    api_url, settings, stores = question_api
    sides = list(range(20, 44, 2))  # 12 distinct questions; 8 may wait at once

    responses = asyncio.run(_ask(api_url, sides, {}, stores))

    refused = [r for r in responses if r.json().get("type") == "/problems/layer-questions-busy"]
    assert len(refused) == len(sides) - 8
    for response in refused:
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        assert response.elapsed.total_seconds() < WAIT_SECONDS / 2
        assert response.json()["detail"] == (
            "8 questions about layers at new sizes are already waiting for a worker "
            "(FILTERVIZ_MAX_LAYER_QUESTIONS); retry shortly or ask for a size listed already"
        )
    assert connect(settings.redis_url).llen(META_QUEUE) == 8


@pytest.mark.parametrize("size", [0, -3])
def test_a_size_below_one_pixel_is_refused(app_client: AppClient, size: int) -> None:
    response = app_client().get(LAYERS_URL, params={"size": size})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "loc": ["query", "size"],
            "msg": f"size {size}x{size} is out of range: each side must be 16 to 96 pixels",
            "type": "size_out_of_range",
        }
    ]
