"""deploy/prometheus and deploy/grafana, checked without promtool: the files' structure, and every metric
their expressions name is one the API or a worker really exports (so a typo, or a renamed metric, fails)."""

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from core.settings import Settings
from testkit.services import service_settings_for
from tests.service_fixtures import redis_db
from worker.metrics import Definitions

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "filterviz.json"
METRIC = re.compile(r"\bfilterviz_[a-z0-9_]+\b")
PROMETHEUS_OWN = {"up"}  # made by Prometheus for every target, not exported by anyone
DURATION = re.compile(r"^[0-9]+[smhd]$")
SAMPLE_SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}


def sample_names(families: Iterable[tuple[str, str]]) -> set[str]:
    """The names of the samples metric families (name, type) expose, as PromQL names them."""
    return {name + suffix for name, kind in families for suffix in SAMPLE_SUFFIXES[kind]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> set[str]:
    """Every sample name the API's /metrics (an app in this process, on a real Redis) and a worker's
    metric definitions expose."""
    root = tmp_path_factory.mktemp("monitoring")
    settings = service_settings_for(redis_db(redis_server, 14), root)
    with TestClient(create_app(settings)) as client:
        client.get("/healthz")  # so the request metrics have a sample
        text = client.get("/metrics").text
    api = [(family.name, family.type) for family in text_string_to_metric_families(text)]
    worker = [(family.name, family.type) for metric in vars(Definitions()).values() for family in metric.collect()]
    return sample_names([*api, *worker])


def alert_rules() -> list[dict]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_panels() -> list[dict]:
    return [panel for panel in json.loads(DASHBOARD.read_text())["panels"] if panel["type"] != "row"]


def expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every alert and every dashboard query."""
    for rule in alert_rules():
        yield f"alert {rule['alert']}", rule["expr"]
    for panel in dashboard_panels():
        for target in panel["targets"]:
            yield f"panel {panel['title']!r}", target["expr"]


def unknown_metrics(expr: str, exported: set[str]) -> set[str]:
    return set(METRIC.findall(expr)) - exported


def test_every_metric_the_alerts_and_the_dashboard_name_is_exported(exported: set[str]) -> None:
    unknown = {where: missing for where, expr in expressions() if (missing := unknown_metrics(expr, exported))}
    assert unknown == {}
    named = {name for _, expr in expressions() for name in METRIC.findall(expr)}
    assert len(named) >= 15  # the check looked at real expressions
    assert "up" in PROMETHEUS_OWN and all("up{" not in expr or "job=" in expr for _, expr in expressions())


def test_the_check_catches_a_misspelt_metric(exported: set[str]) -> None:
    rule = next(rule for rule in alert_rules() if rule["alert"] == "FilterVizJobFailures")
    misspelt = rule["expr"].replace("filterviz_jobs_finished_total", "filterviz_job_finished_total", 1)
    assert unknown_metrics(rule["expr"], exported) == set()
    assert unknown_metrics(misspelt, exported) == {"filterviz_job_finished_total"}


def test_the_alert_rules_are_well_formed() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert {"FilterVizQueueGrowing", "FilterVizNoLiveWorker", "FilterVizApiErrors", "FilterVizJobFailures"} <= set(
        names
    )
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert "for" not in rule or DURATION.match(rule["for"]), rule["alert"]
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), rule["alert"]
        # gauges read from Redis are the same on every API replica: summing them would count them twice
        assert not re.search(r"sum\((filterviz_jobs|filterviz_workers_alive)\b", expr), rule["alert"]


def test_prometheus_scrapes_the_api_and_every_worker_and_loads_the_rules() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"filterviz-api", "filterviz-worker"}
    for name, port, host in (("filterviz-api", 8000, "api"), ("filterviz-worker", 9100, "worker")):
        (lookup,) = jobs[name]["dns_sd_configs"]
        assert jobs[name]["metrics_path"] == "/metrics" and lookup["port"] == port and host in lookup["names"]
    assert Settings().api_metrics and Settings(metrics_port=9100).metrics_port == 9100


def test_the_dashboard_is_a_grafana_dashboard_over_a_chosen_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "filterviz" and dashboard["title"]
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"], variable["name"]) == ("datasource", "prometheus", "datasource")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(panel["title"] for panel in dashboard_panels()).lower()
    for subject in ("request rate", "latency", "jobs by state", "queue depth", "time queued", "filter-steps/s"):
        assert subject in titles
    for subject in ("cache hit rate", "cache size", "webhook failures", "live workers"):
        assert subject in titles
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        position = panel["gridPos"]
        assert 0 <= position["x"] and position["x"] + position["w"] <= 24, panel["title"]
        assert [target["refId"] for target in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]
