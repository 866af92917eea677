"""The TypeScript client: generated from the current OpenAPI document, and working against a real stack.

Node and the client's packages (``npm ci`` in clients/typescript) are installed by ``make test``;
without them these tests fail rather than skip.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from api.openapi import openapi_text
from testkit.services import ServiceProcess

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "typescript"
NPM_TIMEOUT_SECONDS = 300


@pytest.fixture(scope="module")
def client_packages() -> Path:
    generator = CLIENT_DIR / "node_modules" / ".bin" / "openapi-typescript"
    assert generator.exists(), "the TypeScript client's packages are missing: run `make client-deps` (make test does)"
    return CLIENT_DIR


def npm(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", *args],
        cwd=CLIENT_DIR,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT_SECONDS,
        check=False,
    )


def test_the_committed_client_is_what_the_generator_makes_of_the_current_openapi_document(
    client_packages: Path, tmp_path: Path
) -> None:
    document = tmp_path / "openapi.json"
    document.write_text(openapi_text(), encoding="utf-8")
    schema = tmp_path / "schema.d.ts"

    generated = npm(["run", "--silent", "generate", "--", str(document), "--output", str(schema)])

    assert generated.returncode == 0, generated.stdout + generated.stderr
    for committed, current in ((Path("openapi.json"), document), (Path("src", "schema.d.ts"), schema)):
        assert (client_packages / committed).read_text(encoding="utf-8") == current.read_text(encoding="utf-8"), (
            f"{committed} is out of date: run `make client` and commit what it changes"
        )


def test_the_typescript_client_submits_watches_downloads_reads_field_errors_and_cancels_on_a_real_stack(
    client_packages: Path, api_url: str, worker: ServiceProcess
) -> None:
    run = npm(["test"], env={"FILTERVIZ_API_URL": api_url})

    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    passed, failed = re.search(r"\bpass (\d+)", output), re.search(r"\bfail (\d+)", output)
    assert passed and failed, output
    assert (int(passed[1]), int(failed[1])) == (5, 0), output
