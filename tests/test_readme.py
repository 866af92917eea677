"""The README stays true: every setting is documented, and its commands exist."""

import re
from pathlib import Path

from core.settings import Settings

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented():
    missing = [
        f"FILTERVIZ_{name.upper()}" for name in Settings.model_fields if f"FILTERVIZ_{name.upper()}" not in README
    ]
    assert missing == []


def test_the_first_lines_start_the_service_and_run_the_tests():
    first_block = README.split("```")[1]
    assert "make run" in first_block and "make test" in first_block
    targets = re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), flags=re.M)
    assert {"run", "test", "bench", "bench-quality"} <= set(targets)


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
