"""Result storage that is full or cannot be written: the job fails with the reason, earlier results stay whole."""

import errno
import os
from pathlib import Path

import pytest

from core.errors import StorageError
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.files import GRID_PNG, PICTURES, KeyedFiles, filter_png
from core.store.objects import LocalStorage
from tests.api_fixtures import AppClient, small_png
from tests.worker.test_run_job import SPEC, ScriptedEngine, engine, run  # noqa: F401 (engine: a fixture)


def fill_disk_after(monkeypatch: pytest.MonkeyPatch, files: int) -> None:
    """Writes fail with ENOSPC once ``files`` more files were written (mid-write, as on a real full disk)."""
    real_fdopen, written = os.fdopen, []

    def fdopen(fd: int, mode: str = "r", *args: object, **kwargs: object) -> object:
        file = real_fdopen(fd, mode, *args, **kwargs)
        if len(written) >= files:
            real_write = file.write

            def write(data: bytes) -> int:
                real_write(data[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            file.write = write
        written.append(fd)
        return file

    monkeypatch.setattr("core.store.objects.os.fdopen", fdopen)


@pytest.mark.parametrize(
    "spec", [SPEC, SPEC.model_copy(update={"filters": [2, 3]})], ids=["cached pictures", "new pictures"]
)
def test_a_full_disk_fails_the_job_with_the_reason_and_keeps_earlier_results(
    scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    spec: RenderSpec,
) -> None:
    settings, stores = scratch
    earlier = run(scratch)
    before = {name: stores.results.get(earlier.id, name) for name in (GRID_PNG, filter_png(1), filter_png(4))}
    pictures = sorted((settings.storage_dir / PICTURES).iterdir())
    fill_disk_after(monkeypatch, files=0)

    record = run(scratch, spec)

    assert record.status == "failed" and record.error.type == "StorageError"
    assert record.error.message == f"cannot store files under {settings.storage_dir}: the disk is full (OSError)"
    assert not (settings.storage_dir / record.id).exists()  # neither its list of pictures nor a half-written one
    assert sorted((settings.storage_dir / PICTURES).iterdir()) == pictures  # no half-written picture
    assert {name: stores.results.get(earlier.id, name) for name in before} == before


def test_unwritable_storage_fails_the_job_with_the_reason(
    scratch: tuple[Settings, Stores],
    engine: ScriptedEngine,  # noqa: F811
) -> None:
    settings, stores = scratch
    settings.storage_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.storage_dir.write_bytes(b"")  # a file where the directory should be: no permission bits can help

    record = run(scratch)

    assert record.status == "failed" and record.error.type == "StorageError"
    assert record.error.message.startswith(f"cannot store files under {settings.storage_dir}: ")


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = KeyedFiles(LocalStorage(tmp_path))
    key = "d" * 32
    storage.put(key, GRID_PNG, b"the whole old picture")
    fill_disk_after(monkeypatch, files=0)

    with pytest.raises(StorageError, match="the disk is full"):
        storage.put(key, GRID_PNG, b"a new picture, cut short")

    assert storage.get(key, GRID_PNG) == b"the whole old picture"
    assert [path.name for path in (tmp_path / key).iterdir()] == [GRID_PNG]


def test_an_upload_to_full_storage_is_a_507(app_client: AppClient, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app_client()
    fill_disk_after(monkeypatch, files=0)
    response = client.post("/v1/images", content=small_png(), headers={"content-type": "image/png"})

    assert response.status_code == 507 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].endswith(": the disk is full (OSError)")
