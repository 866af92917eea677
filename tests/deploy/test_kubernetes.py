"""What deploy/k8s promises beyond its schemas: probes that mean something, GPUs, graceful stops, no RWX."""

from urllib.parse import urlsplit

import yaml

from core.queues import META_QUEUE
from tests.deploy.deploy_files import KUSTOMIZATION, container, k8s_documents, k8s_resource, pod_spec

SCALED_KEYS = {"queued-jobs": "filterviz:jobs:queued", "running-jobs": "filterviz:jobs:running"}


def _config() -> dict[str, str]:
    return k8s_resource("ConfigMap", "filterviz")["data"]


def test_no_volume_is_shared_for_writing() -> None:
    """Results, uploads and the cache are in the bucket: no ReadWriteMany claim, and only the weights are shared."""
    claims = [doc for _, doc in k8s_documents() if doc["kind"] == "PersistentVolumeClaim"]
    assert [claim["metadata"]["name"] for claim in claims] == ["filterviz-weights"]
    assert claims[0]["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert "volumes" not in pod_spec(k8s_resource("Deployment", "filterviz-api"))
    (weights,) = pod_spec(k8s_resource("Deployment", "filterviz-worker"))["volumes"]
    assert weights["persistentVolumeClaim"] == {"claimName": "filterviz-weights", "readOnly": True}
    assert _config()["FILTERVIZ_STORAGE_BACKEND"] == "s3"
    endpoint = urlsplit(_config()["FILTERVIZ_S3_ENDPOINT_URL"])
    assert (endpoint.hostname, endpoint.port) == ("minio", k8s_resource("Service", "minio")["spec"]["ports"][0]["port"])


def test_both_roles_read_the_settings_and_the_bucket_keys() -> None:
    secret = k8s_resource("Secret", "filterviz-s3")["stringData"]
    assert set(secret) == {"FILTERVIZ_S3_ACCESS_KEY_ID", "FILTERVIZ_S3_SECRET_ACCESS_KEY"}
    for name, role in (("filterviz-api", "api"), ("filterviz-worker", "worker")):
        assert container(k8s_resource("Deployment", name), role)["envFrom"] == [
            {"configMapRef": {"name": "filterviz"}},
            {"secretRef": {"name": "filterviz-s3"}},
        ]


def test_gpu_workers_run_one_render_process_per_gpu() -> None:
    worker = container(k8s_resource("Deployment", "filterviz-worker"), "worker")
    args = worker["args"]
    assert int(args[args.index("--concurrency") + 1]) == worker["resources"]["limits"]["nvidia.com/gpu"]
    assert {"name": "FILTERVIZ_DEVICE", "value": "cuda"} in worker["env"]


def test_the_probes_ask_what_they_mean() -> None:
    api = container(k8s_resource("Deployment", "filterviz-api"), "api")
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    worker = container(k8s_resource("Deployment", "filterviz-worker"), "worker")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert worker[probe]["exec"]["command"] == ["python", "-m", "worker.liveness"]
    # a worker is restarted only after the janitors already call it dead
    liveness = worker["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= float(_config()["FILTERVIZ_STALE_AFTER_SECONDS"])


def test_a_stopped_worker_finishes_its_job_within_the_grace_period() -> None:
    """On SIGTERM Celery finishes the running job, which its hard time limit bounds (see test_pod_termination)."""
    grace = pod_spec(k8s_resource("Deployment", "filterviz-worker"))["terminationGracePeriodSeconds"]
    assert grace > int(_config()["FILTERVIZ_JOB_TIME_LIMIT"])


def test_the_disruption_budgets_cover_the_deployments() -> None:
    for name in ("filterviz-api", "filterviz-worker"):
        budget = k8s_resource("PodDisruptionBudget", name)["spec"]
        labels = k8s_resource("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert k8s_resource("PodDisruptionBudget", "filterviz-worker")["spec"] == {
        "maxUnavailable": 1,  # minAvailable would block every drain once KEDA scales to zero
        "selector": {"matchLabels": {"app": "filterviz-worker"}},
    }


def test_the_api_scales_on_cpu_and_the_workers_on_the_queue() -> None:
    hpa = k8s_resource("HorizontalPodAutoscaler", "filterviz-api")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "filterviz-api"}
    assert [metric["resource"]["name"] for metric in hpa["metrics"]] == ["cpu"]
    scaled = k8s_resource("ScaledObject", "filterviz-worker")["spec"]
    assert scaled["scaleTargetRef"] == {"name": "filterviz-worker"}
    assert 0 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    triggers = {trigger["name"]: trigger["metadata"] for trigger in scaled["triggers"]}
    assert {name: meta["listName"] for name, meta in triggers.items()} == {**SCALED_KEYS, "layer-questions": META_QUEUE}


def test_keda_reaches_the_redis_the_service_uses() -> None:
    """KEDA's operator runs in its own namespace: the address names Redis's Service in this one, and its database."""
    namespace = yaml.safe_load(KUSTOMIZATION.read_text())["namespace"]
    url = urlsplit(_config()["FILTERVIZ_REDIS_URL"])
    port = k8s_resource("Service", url.hostname or "")["spec"]["ports"][0]["port"]
    for trigger in k8s_resource("ScaledObject", "filterviz-worker")["spec"]["triggers"]:
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["address"] == f"{url.hostname}.{namespace}.svc.cluster.local:{port}"
        assert trigger["metadata"]["databaseIndex"] == url.path.lstrip("/")
    assert k8s_resource("Namespace", namespace)
