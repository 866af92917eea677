"""What a command costs before it works: the modules it imports, and the layer table from its cache."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from filterviz.cli import COMMAND_MODULES, build_parser, main

SERVICE_LIBRARIES = {"celery", "kombu", "redis", "uvicorn", "fastapi", "starlette", "httpx"}

PARSE_AND_LIST = """
import sys
from filterviz.cli import build_parser
build_parser(sys.argv[1])
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def top_modules_after_parsing(command: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PARSE_AND_LIST, command], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


@pytest.mark.parametrize("command", ["layers", "render"])
def test_the_engine_commands_import_no_service_library_and_no_torch_before_they_run(command: str):
    imported = top_modules_after_parsing(command)
    assert not imported & (SERVICE_LIBRARIES | {"torch", "torchvision", "timm"})
    assert "filterviz" in imported


def test_the_client_commands_import_no_torch():
    imported = top_modules_after_parsing("submit")
    assert "httpx" in imported
    assert not imported & {"torch", "celery", "uvicorn"}


def test_the_command_table_names_every_command_its_modules_add():
    (subparsers,) = [action for action in build_parser()._actions if action.dest == "command"]
    assert subparsers.choices is not None
    assert set(subparsers.choices) == {name for names in COMMAND_MODULES.values() for name in names}


LAYERS_AND_TORCH = """
import json, sys
from filterviz.cli import main
main(["layers", "vgg16", "--size", "64", "--json"])
print(json.dumps("torch" in sys.modules))
"""


def test_the_layer_table_comes_from_its_cache_without_torch_the_second_time(tmp_path: Path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", LAYERS_AND_TORCH], env=env, capture_output=True, text=True, check=True
        )
        table, torch_imported = done.stdout.rsplit("\n", 2)[:2]
        runs.append((json.loads(table), json.loads(torch_imported)))
    (first, computed), (second, cached) = runs
    assert computed and not cached
    assert first == second and first[0]["name"] == "block1_conv1" and first[0]["output_shape"] == [64, 64, 64]
    assert len(list((tmp_path / "filterviz" / "layers").glob("vgg16-64x64-*.json"))) == 1


def test_a_damaged_cache_file_is_computed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["layers", "vgg16", "--size", "32", "--json"]) == 0
    computed = json.loads(capsys.readouterr().out)
    (cached,) = (tmp_path / "filterviz" / "layers").glob("vgg16-32x32-*.json")
    cached.write_text('{"half a fi')
    assert main(["layers", "vgg16", "--size", "32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == computed
    assert json.loads(cached.read_text()) == computed  # written anew


def test_an_unknown_model_is_refused_and_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["layers", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "filterviz" / "layers").exists()
