"""Result storage: atomic writes, one folder per job, no path outside the root, each picture stored once
and checked against its size and hash when read; the store-level tests on both backends (a local
directory and an S3 bucket)."""

import re
from pathlib import Path

import pytest

from core.errors import DamagedPicture
from core.settings import Settings
from core.store import Stores
from core.store.files import GRID_PNG, PICTURES, KeyedFiles, PictureRef, filter_png
from core.store.objects import LocalStorage

JOB = "0123456789abcdef0123456789abcdef"
OTHER_JOB = "fedcba9876543210fedcba9876543210"


def test_stored_bytes_come_back_from_the_job_directory(tmp_path: Path) -> None:
    storage = KeyedFiles(LocalStorage(tmp_path))
    storage.put(JOB, filter_png(7), b"first")
    storage.put(JOB, filter_png(7), b"second")

    assert storage.get(JOB, "filter_0007.png") == b"second"
    assert storage.exists(JOB, filter_png(7)) and not storage.exists(JOB, GRID_PNG)
    assert storage.get(JOB, GRID_PNG) is None
    assert sorted(p.name for p in (tmp_path / JOB).iterdir()) == ["filter_0007.png"]  # no temporary files left


def test_delete_removes_everything_of_a_job(tmp_path: Path) -> None:
    storage = KeyedFiles(LocalStorage(tmp_path))
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
    storage = KeyedFiles(LocalStorage(tmp_path / "root"))
    with pytest.raises(ValueError, match="is not 32 hex digits|is not allowed"):
        storage.put(key, name, b"x")
    assert not (tmp_path / "root").exists()


def test_a_picture_shown_by_two_jobs_is_stored_once(any_scratch: tuple[Settings, Stores]) -> None:
    results = any_scratch[1].results
    results.put(JOB, GRID_PNG, b"the picture")
    results.put(OTHER_JOB, filter_png(3), b"the picture")

    assert results.get(JOB, GRID_PNG) == results.get(OTHER_JOB, filter_png(3)) == b"the picture"
    assert results.pictures.sizes() == {PictureRef.of(b"the picture").sha256: 11}
    assert results.refs(JOB) == {GRID_PNG: PictureRef.of(b"the picture")}
    results.delete(JOB)
    assert results.get(JOB, GRID_PNG) is None and results.get(OTHER_JOB, filter_png(3)) == b"the picture"


@pytest.mark.parametrize(
    ("stored", "says"),
    [
        (b"the pic", "7 of its 11 bytes are stored"),
        (b"", "0 of its 11 bytes are stored"),
        (b"THE PICTURE", "its bytes changed since they were stored (SHA-256 mismatch)"),
    ],
)
def test_damaged_bytes_are_reported_never_returned(
    any_scratch: tuple[Settings, Stores], stored: bytes, says: str
) -> None:
    results = any_scratch[1].results
    results.put(JOB, GRID_PNG, b"the picture")
    name = f"{PICTURES}/{PictureRef.of(b'the picture').sha256}"
    results.pictures.objects.put(name, stored)  # what a failing disk, or someone with the bucket's keys, did

    with pytest.raises(DamagedPicture, match=re.escape(says)):
        results.get(JOB, GRID_PNG)
    assert not results.pictures.verified(PictureRef.of(b"the picture"))  # and a cache hit on it is a miss
    assert results.pictures.objects.head(name) is None


def test_a_damaged_list_of_pictures_is_reported(any_scratch: tuple[Settings, Stores]) -> None:
    results = any_scratch[1].results
    results.put(JOB, GRID_PNG, b"the picture")
    results.pictures.objects.put(f"{JOB}/pictures", b'{"grid.png": {"sha256": "../../etc/passwd", "size": 1}}')

    with pytest.raises(DamagedPicture, match=f"the list of pictures of job {JOB} is damaged"):
        results.get(JOB, GRID_PNG)
    assert results.referenced([JOB]) == set()
