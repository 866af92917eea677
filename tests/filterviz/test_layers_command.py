"""``filterviz layers`` from its cache imports no torch and nothing of ``render``'s (PIL, tqdm)."""

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = {"torch", "torchvision", "timm", "numpy", "PIL", "tqdm", "celery", "redis", "httpx", "uvicorn", "fastapi"}

LAYERS_AND_MODULES = """
import json, sys
from filterviz.cli import main
main(["layers", "vgg16", "--size", "48"])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_the_cached_layer_table_imports_none_of_the_heavy_libraries(tmp_path: Path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = []
    for _ in range(2):  # the first computes the table (torch), the second reads it
        done = subprocess.run(
            [sys.executable, "-c", LAYERS_AND_MODULES], env=env, capture_output=True, text=True, check=True
        )
        table, modules = done.stdout.rstrip("\n").rsplit("\n", 1)
        runs.append((table, set(json.loads(modules))))
    (computed_table, computed_with), (cached_table, cached_with) = runs
    assert "torch" in computed_with
    assert cached_table == computed_table and "block4_conv1 (Conv2d)" in cached_table
    assert not cached_with & HEAVY, cached_with & HEAVY
    assert "filterviz" in cached_with
