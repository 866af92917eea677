"""docker-compose.yml has the parts of the deployment, sharing nothing but Redis and the bucket."""

import re
from urllib.parse import urlsplit

from core.settings import Settings
from tests.deploy.deploy_files import ROOT, load_compose

WORKERS = ("worker-cpu", "worker-gpu")


def _seconds(duration: str) -> int:
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert parts and duration, duration
    return sum(int(value) * units[unit] for value, unit in zip(parts.groups(), "hms", strict=True) if value)


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = load_compose()["services"]["redis"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert [volume.split(":")[1] for volume in redis["volumes"]] == ["/data"]


def test_the_workers_are_profiles_and_the_gpu_one_reserves_a_gpu() -> None:
    services = load_compose()["services"]
    assert services["worker-cpu"]["profiles"] == ["cpu"] and services["worker-gpu"]["profiles"] == ["gpu"]
    assert services["worker-cpu"]["environment"]["FILTERVIZ_DEVICE"] == "cpu"
    assert services["worker-gpu"]["environment"]["FILTERVIZ_DEVICE"] == "cuda"
    (device,) = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert str(device["count"]) == services["worker-gpu"]["command"][-1]  # one render process per GPU
    assert "deploy" not in services["worker-cpu"]
    assert all("profiles" not in services[name] for name in ("redis", "minio", "bucket", "api", "prometheus"))


def test_api_and_workers_share_no_volume_only_redis_and_the_bucket() -> None:
    services = load_compose()["services"]

    def mounts(name: str) -> set[str]:
        return {volume.split(":")[0] for volume in services[name].get("volumes", [])}

    for worker in WORKERS:
        assert mounts("api") & mounts(worker) == set()
        assert mounts(worker) == {"./weights"}  # read-only weights, nothing written
        environment = services[worker]["environment"]
        assert environment["FILTERVIZ_STORAGE_BACKEND"] == "s3"
        assert {key: environment[key] for key in environment if "S3" in key or "REDIS" in key} == {
            key: services["api"]["environment"][key] for key in environment if "S3" in key or "REDIS" in key
        }
    endpoint = urlsplit(services["api"]["environment"]["FILTERVIZ_S3_ENDPOINT_URL"])
    assert endpoint.hostname == "minio" and endpoint.port == 9000
    assert urlsplit(services["api"]["environment"]["FILTERVIZ_REDIS_URL"]).hostname == "redis"


def test_the_bucket_is_made_once_before_the_api_and_workers_start() -> None:
    services = load_compose()["services"]
    bucket_name = services["api"]["environment"]["FILTERVIZ_S3_BUCKET"]
    assert f"mc mb --ignore-existing store/{bucket_name}" in services["bucket"]["command"][0]
    assert services["bucket"]["restart"] == "no"
    for name in ("api", *WORKERS):
        assert services[name]["depends_on"]["bucket"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["bucket"]["environment"] == services["minio"]["environment"]  # MinIO's own keys


def test_prometheus_reads_the_deploy_prometheus_folder() -> None:
    prometheus = load_compose()["services"]["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_a_stopped_worker_has_time_to_finish_its_job() -> None:
    """`docker compose stop` sends SIGTERM (Celery finishes its job), then SIGKILL after the grace period."""
    services = load_compose()["services"]
    for worker in WORKERS:
        assert _seconds(services[worker]["stop_grace_period"]) > Settings().job_time_limit
        assert services[worker]["healthcheck"]["test"] == ["CMD", "python", "-m", "worker.liveness"]


def test_the_cpu_override_file_is_gone_with_every_mention_of_it() -> None:
    assert not (ROOT / "deploy" / "compose.cpu.yml").exists()
    for path in (ROOT / "README.md", ROOT / "docker-compose.yml", ROOT / "deploy" / "Dockerfile"):
        assert "compose.cpu" not in path.read_text()
