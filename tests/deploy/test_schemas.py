"""docker-compose.yml and every manifest under deploy/k8s pass their schemas, and a broken copy does not."""

import copy
import hashlib
import re
from collections.abc import Callable

import pytest
import yaml

from tests.deploy.deploy_files import (
    K8S_DIR,
    KUSTOMIZATION,
    SCHEMAS,
    Doc,
    compose_problems,
    k8s_documents,
    k8s_manifests,
    k8s_problems,
    k8s_resource,
    load_compose,
)


def test_the_vendored_schemas_are_the_files_their_readme_names() -> None:
    """Byte for byte as downloaded (deploy/schemas/README.md says from where): never edited here."""
    rows = re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", (SCHEMAS / "README.md").read_text(), re.MULTILINE)
    assert {name for name, _ in rows} == {"compose-spec.json", "keda.sh_scaledobjects.yaml"}
    for name, digest in rows:
        assert hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest() == digest, name


def test_docker_compose_yml_follows_the_compose_specification() -> None:
    assert compose_problems(load_compose()) == []


def _set(path: str, value: object) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


COMPOSE_MISTAKES = {
    "a misspelt service key": _set("services.api.comand", ["filterviz", "api"]),
    "a depends_on condition that does not exist": _set("services.bucket.depends_on.minio.condition", "healthy"),
    "a misspelt GPU reservation field": _set(
        "services.worker-gpu.deploy.resources.reservations.devices.0.capability", ["gpu"]
    ),
    "profiles as a string": _set("services.worker-cpu.profiles", "cpu"),
}


@pytest.mark.parametrize("mistake", COMPOSE_MISTAKES, ids=list(COMPOSE_MISTAKES))
def test_a_broken_compose_file_fails_validation(mistake: str) -> None:
    broken = copy.deepcopy(load_compose())
    COMPOSE_MISTAKES[mistake](broken)
    assert compose_problems(broken)


@pytest.mark.parametrize(("name", "doc"), k8s_documents(), ids=[name for name, _ in k8s_documents()])
def test_every_kubernetes_manifest_passes_its_schema(name: str, doc: Doc) -> None:
    assert k8s_problems(doc) == []


K8S_MISTAKES = {
    "Deployment: a misspelt field": ("Deployment", "filterviz-worker", _set("spec.replica", 2)),
    "Deployment: a probe's port that is no port": (
        "Deployment",
        "filterviz-api",
        _set("spec.template.spec.containers.0.readinessProbe.httpGet.port", ["http"]),
    ),
    "HPA: a utilization as a percent string": (
        "HorizontalPodAutoscaler",
        "filterviz-api",
        _set("spec.metrics.0.resource.target.averageUtilization", "70%"),
    ),
    "PodDisruptionBudget: in the wrong place": ("PodDisruptionBudget", "filterviz-worker", _set("maxUnavailable", 1)),
    "ScaledObject: an HPA's field name": ("ScaledObject", "filterviz-worker", _set("spec.minReplicas", 0)),
    "ScaledObject: a replica count that is no number": (
        "ScaledObject",
        "filterviz-worker",
        _set("spec.minReplicaCount", "zero"),
    ),
    "ScaledObject: trigger metadata that is no string": (
        "ScaledObject",
        "filterviz-worker",
        _set("spec.triggers.0.metadata.listLength", 4),
    ),
}


@pytest.mark.parametrize("mistake", K8S_MISTAKES, ids=list(K8S_MISTAKES))
def test_a_broken_manifest_fails_validation(mistake: str) -> None:
    kind, name, apply = K8S_MISTAKES[mistake]
    broken = copy.deepcopy(k8s_resource(kind, name))
    apply(broken)
    assert k8s_problems(broken)


def test_the_kustomization_applies_every_manifest_and_only_those() -> None:
    resources = yaml.safe_load(KUSTOMIZATION.read_text())["resources"]
    assert sorted(resources) == [path.name for path in k8s_manifests()]
    assert all((K8S_DIR / name).is_file() for name in resources)
