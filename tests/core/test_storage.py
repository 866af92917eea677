"""Local result storage: atomic writes, one directory per job, no path outside the root."""

from pathlib import Path

import pytest

from core.storage import GRID_PNG, LocalStorage, filter_png

JOB = "0123456789abcdef0123456789abcdef"


def test_stored_bytes_come_back_from_the_job_directory(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put(JOB, filter_png(7), b"first")
    storage.put(JOB, filter_png(7), b"second")

    assert storage.get(JOB, "filter_0007.png") == b"second"
    assert storage.exists(JOB, filter_png(7)) and not storage.exists(JOB, GRID_PNG)
    assert storage.get(JOB, GRID_PNG) is None
    assert sorted(p.name for p in (tmp_path / JOB).iterdir()) == ["filter_0007.png"]  # no temporary files left


def test_delete_removes_everything_of_a_job(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put(JOB, GRID_PNG, b"grid")
    storage.put(JOB, filter_png(0), b"png")
    storage.delete(JOB)
    storage.delete(JOB)  # twice is fine

    assert not (tmp_path / JOB).exists()


@pytest.mark.parametrize(
    ("key", "name"),
    [("../" + JOB[3:], GRID_PNG), (JOB.upper(), GRID_PNG), (JOB, "../grid.png"), (JOB, "grid.exe"), ("", GRID_PNG)],
)
def test_keys_and_names_that_could_leave_the_root_are_refused(tmp_path: Path, key: str, name: str) -> None:
    storage = LocalStorage(tmp_path / "root")
    with pytest.raises(ValueError, match="is not 32 hex digits|is not allowed"):
        storage.put(key, name, b"x")
    assert not (tmp_path / "root").exists()
