"""The deployment files as data, and their schema checks: docker-compose.yml against the Compose
specification, deploy/k8s against Kubernetes' schemas and KEDA's CRD. All offline (deploy/schemas)."""

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from redis import Redis

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S_DIR = ROOT / "deploy" / "k8s"
SCHEMAS = ROOT / "deploy" / "schemas"
KUSTOMIZATION = K8S_DIR / "kustomization.yaml"
KUBERNETES_VERSION = "1.37"  # the newest release kubernetes-validate ships schemas of

Doc = dict[str, Any]

# KEDA v2.20.2, pkg/scalers/redis_scaler.go: how its redis scaler measures listName, whatever its type
_KEDA_LENGTH = """
local listName = KEYS[1]
local listType = redis.call('type', listName).ok
if listType == 'zset' then
    return redis.call('zcard', listName)
elseif listType == 'set' then
    return redis.call('scard', listName)
elseif listType == 'hash' then
    return redis.call('hlen', listName)
elseif listType == 'list' or listType == 'none' then
    return redis.call('llen', listName)
else
    return redis.error_reply('ERR unsupported key type: ' .. listType)
end
"""


def keda_length(redis: Redis, key: str) -> int:
    """The value KEDA's redis trigger reads for ``key`` (its listName)."""
    return int(redis.eval(_KEDA_LENGTH, 1, key))


def load_compose() -> Doc:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def k8s_manifests() -> list[Path]:
    return sorted(path for path in K8S_DIR.glob("*.yaml") if path != KUSTOMIZATION)


def k8s_documents() -> list[tuple[str, Doc]]:
    """(file:kind/name, resource) for every resource in every manifest."""
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in k8s_manifests()
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


def k8s_resource(kind: str, name: str) -> Doc:
    (doc,) = [doc for _, doc in k8s_documents() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return doc


def pod_spec(doc: Doc) -> Doc:
    return doc["spec"]["template"]["spec"]


def container(doc: Doc, name: str) -> Doc:
    (found,) = [c for c in pod_spec(doc)["containers"] if c["name"] == name]
    return found


def compose_problems(data: Doc) -> list[str]:
    return _problems(_compose_validator(), data)


def k8s_problems(doc: Doc) -> list[str]:
    """Kubernetes' own schemas (strict: an unknown field is an error, as `kubectl apply` says), or KEDA's CRD."""
    if doc.get("apiVersion", "").startswith("keda.sh/"):
        return _problems(_keda_validator(doc.get("kind")), doc)
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []


def _problems(validator: jsonschema.protocols.Validator, data: Doc) -> list[str]:
    return [f"{'/'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(data)]


def _compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def _keda_validator(kind: object) -> jsonschema.protocols.Validator:
    crd = yaml.safe_load((SCHEMAS / "keda.sh_scaledobjects.yaml").read_text())
    if kind != crd["spec"]["names"]["kind"]:
        raise ValueError(f"no vendored KEDA CRD for kind {kind!r}")
    (version,) = [v for v in crd["spec"]["versions"] if v["served"] and v["storage"]]
    return jsonschema.Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))


def _strict(schema: Doc) -> Doc:
    """The CRD's schema with unknown fields refused (the API server prunes them silently; kubectl's
    strict field validation refuses them), as kubernetes-validate's strict schemas do."""
    strict = copy.deepcopy(schema)
    for node in _object_schemas(strict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
    return strict


def _object_schemas(node: object) -> Iterator[Doc]:
    if isinstance(node, dict):
        if node.get("type") == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
            yield node
        for value in node.values():
            yield from _object_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _object_schemas(value)
