"""GET /metrics in process: open where /v1 needs keys, outside the rate limit, not in the OpenAPI document,
off with FILTERVIZ_API_METRICS=false, and still answering (with the request metrics) while Redis is out."""

from prometheus_client.parser import text_string_to_metric_families

from api.metrics import BATCH_KEY_SERIES
from core.batching import batch_key
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from filterviz.redis_server import free_port
from tests.api_fixtures import KEY_DIGESTS, AppClient

QUEUED_BY_KEY = "filterviz_queued_jobs_by_batch_key"


def samples(text: str) -> dict[str, float]:
    """Unlabelled samples by name (enough for the gauges looked at here)."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def test_metrics_need_no_key_and_no_rate_limit_budget(app_client: AppClient) -> None:
    client = app_client(api_keys=KEY_DIGESTS, rate_limit_per_minute=1)
    assert client.get("/v1/models").status_code == 401
    answers = [client.get("/metrics") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert answers[-1].headers["content-type"].startswith("text/plain; version=")
    found = samples(answers[-1].text)
    assert found["filterviz_redis_up"] == 1 and found["filterviz_workers_alive"] == 0
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_metrics_can_be_turned_off(app_client: AppClient) -> None:
    assert app_client(api_metrics=False).get("/metrics").status_code == 404


def test_a_scrape_while_redis_is_out_says_so(app_client: AppClient) -> None:
    client = app_client(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    client.get("/healthz")
    answer = client.get("/metrics")
    assert answer.status_code == 200
    found = samples(answer.text)
    families = {family.name for family in text_string_to_metric_families(answer.text)}
    assert found["filterviz_redis_up"] == 0 and not families & {"filterviz_jobs", "filterviz_workers_alive"}
    assert 'filterviz_http_requests_total{handler="/healthz",method="GET",status="200"} 1.0' in answer.text


def test_queued_jobs_per_batch_key_are_bounded_and_add_up_to_the_queue(
    app_client: AppClient, scratch: tuple[Settings, Stores]
) -> None:
    _, stores = scratch
    client = app_client()
    spec = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters=[0], size=32, steps=1)
    for steps in range(1, 13):  # twelve batch keys (the steps differ), with 1 ... 12 queued jobs
        for _ in range(steps):
            stores.jobs.create(spec.model_copy(update={"steps": steps}))

    exact = by_batch_key(client.get("/metrics").text)
    assert len(exact) == BATCH_KEY_SERIES + 1  # the ten largest, and the rest as one
    assert sorted(exact.values(), reverse=True)[:BATCH_KEY_SERIES] == list(range(12, 2, -1))
    assert exact[("other", "")] == 1 + 2
    assert exact[(batch_key(spec.model_copy(update={"steps": 12})), "efficientnet_lite0")] == 12

    for _ in range(300):  # now more are queued than a scrape reads: a sample, scaled to the queue
        stores.jobs.create(spec.model_copy(update={"steps": 50}))
    estimated = by_batch_key(client.get("/metrics").text)
    assert abs(sum(estimated.values()) - (78 + 300)) <= len(estimated)  # each rounded
    assert len(estimated) <= BATCH_KEY_SERIES + 1
    assert max(estimated, key=lambda labels: estimated[labels])[0] == batch_key(spec.model_copy(update={"steps": 50}))


def by_batch_key(text: str) -> dict[tuple[str, str], float]:
    (family,) = [family for family in text_string_to_metric_families(text) if family.name == QUEUED_BY_KEY]
    return {(sample.labels["batch_key"], sample.labels["model"]): sample.value for sample in family.samples}
