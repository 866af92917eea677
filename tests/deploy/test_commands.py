"""The deployment files run what exists: the Dockerfile copies real paths and installs the package
`make install` installs; every command is one the CLI accepts; every setting is one Settings reads."""

import json
import re
import shlex
import tomllib
from collections.abc import Iterator

import pytest

from core.settings import Settings
from filterviz.cli import build_parser
from filterviz.service import run_api, run_worker
from tests.deploy.deploy_files import DOCKERFILE, ROOT, Doc, k8s_documents, load_compose
from worker.liveness import build_parser as liveness_parser

SETTINGS_PREFIX = "FILTERVIZ_"


def _dockerfile_instructions(keyword: str) -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [line.split(maxsplit=1)[1] for line in text.splitlines() if line.startswith(f"{keyword} ")]


def _install_targets(command: str) -> list[str]:
    """What a `pip install` line installs: its arguments that are no options."""
    words = shlex.split(command.split("pip install", 1)[1])
    return [word for word in words if not word.startswith("-") and not word.startswith("&&")]


def test_every_path_the_dockerfile_copies_exists() -> None:
    copies = [shlex.split(line) for line in _dockerfile_instructions("COPY")]
    sources = [source for *sources, _ in copies for source in sources]
    assert sources and all((ROOT / source).exists() for source in sources), sources


def test_the_image_installs_the_package_make_install_installs() -> None:
    """`make install` installs the working tree with its dev extra (editable); the image, the same tree without it."""
    makefile = (ROOT / "Makefile").read_text()
    make_targets = [t for line in makefile.splitlines() if "pip install" in line for t in _install_targets(line)]
    project = [re.sub(r"\[.*\]$", "", target) for target in make_targets if target != "pip"]
    (image_install,) = [line for line in _dockerfile_instructions("RUN") if "pip install" in line]
    assert project == ["."] and _install_targets(image_install) == ["."]


def test_the_image_has_every_package_and_file_the_install_needs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = {source for line in _dockerfile_instructions("COPY") for source in shlex.split(line)[:-1]}
    packages = {pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"pyproject.toml", pyproject["project"]["readme"]} <= copied


def _filterviz_services(compose: Doc) -> dict[str, Doc]:
    return {
        name: service for name, service in compose["services"].items() if service.get("image") == "filterviz:latest"
    }


def _commands() -> Iterator[tuple[str, list[str]]]:
    """(where, argv) of every command a deployment file runs in the filterviz image."""
    for name, service in _filterviz_services(load_compose()).items():
        yield f"compose {name}", service["command"]
        yield f"compose {name} healthcheck", service["healthcheck"]["test"][1:]  # after "CMD"
    for where, doc in k8s_documents():
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                yield where, container["args"]
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    if "exec" in container.get(probe, {}):
                        yield f"{where} {probe}", container[probe]["exec"]["command"]
    for line in _dockerfile_instructions("CMD"):
        yield "Dockerfile CMD", json.loads(line)


LIVENESS = ["python", "-m", "worker.liveness"]


@pytest.mark.parametrize(("where", "argv"), list(_commands()), ids=[where for where, _ in _commands()])
def test_every_command_is_one_the_cli_accepts(where: str, argv: list[str]) -> None:
    if argv[: len(LIVENESS)] == LIVENESS:
        liveness_parser(Settings()).parse_args(argv[len(LIVENESS) :])  # an unknown option exits 2: fails
        return
    if argv[:2] == ["python", "-c"]:  # the API's healthcheck: a plain GET of /healthz
        assert "/healthz" in argv[2]
        return
    assert argv[0] == "filterviz", argv
    args = build_parser().parse_args(argv[1:])
    assert args.func in (run_api, run_worker)


def _setting_names() -> Iterator[tuple[str, str]]:
    compose = load_compose()
    for name, service in _filterviz_services(compose).items():
        for variable in service["environment"]:
            yield f"compose {name}", variable
    for where, doc in k8s_documents():
        if doc["kind"] in ("ConfigMap", "Secret"):
            for variable in {**doc.get("data", {}), **doc.get("stringData", {})}:
                yield where, variable
        elif doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for variable in container.get("env", []):
                    yield where, variable["name"]


def test_every_setting_named_is_one_settings_reads() -> None:
    """A misspelt FILTERVIZ_ variable is silently ignored by pydantic-settings: catch it here."""
    unknown = {
        (where, variable)
        for where, variable in _setting_names()
        if variable.startswith(SETTINGS_PREFIX)
        and variable.removeprefix(SETTINGS_PREFIX).lower() not in Settings.model_fields
    }
    assert unknown == set()
    assert sum(1 for _ in _setting_names()) > 20  # the walk found them
