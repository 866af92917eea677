"""Where result PNGs and uploaded start images live. Torch-free.

Everything is addressed as (key, name): key is a job or image id (32 hex digits, checked before
any path is built, so no request can reach outside the storage root), name a file in it.
"""

import errno
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Protocol

from core.errors import StorageError

GRID_PNG = "grid.png"
UPLOAD_SOURCE = "source"  # the uploaded bytes, as sent (PNG or JPEG)

_KEY = re.compile(r"^[0-9a-f]{32}$")
_NAME = re.compile(r"^[a-z0-9_]+(\.png|\.webp)?$")
_TEMPORARY = ".tmp-"
_REASONS = {  # why a write failed, in words
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def filter_png(filter_index: int, variant: int = 0) -> str:
    return f"{_filter_stem(filter_index, variant)}.png"


def filter_animation(filter_index: int, variant: int = 0) -> str:
    """The animated WebP of a render's snapshots."""
    return f"{_filter_stem(filter_index, variant)}.webp"


def _filter_stem(filter_index: int, variant: int) -> str:
    return f"filter_{filter_index:04d}" + (f"_v{variant}" if variant else "")


class ResultStorage(Protocol):
    def put(self, key: str, name: str, data: bytes) -> None:
        """Store ``data`` so that readers see either nothing or all of it; StorageError if it cannot."""

    def get(self, key: str, name: str) -> bytes | None:
        """The stored bytes, or None."""

    def exists(self, key: str, name: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove everything stored under ``key``."""

    def keys(self) -> list[str]:
        """Every key something is stored under."""

    def discard_temporaries(self, older_than_seconds: float) -> int:
        """Remove what writers that died mid-write left behind; returns how many."""


class LocalStorage:
    """A directory per key under ``root``; writes go to a temporary file, then ``os.replace``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, name: str, data: bytes) -> None:
        path = self._path(key, name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_then_rename(path, data)
        except OSError as exc:
            raise StorageError(_storage_failure(self.root, exc)) from None

    def get(self, key: str, name: str) -> bytes | None:
        try:
            return self._path(key, name).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str, name: str) -> bool:
        return self._path(key, name).is_file()

    def delete(self, key: str) -> None:
        shutil.rmtree(self._path(key), ignore_errors=True)

    def keys(self) -> list[str]:
        try:
            return [entry.name for entry in os.scandir(self.root) if entry.is_dir() and _KEY.match(entry.name)]
        except FileNotFoundError:
            return []

    def discard_temporaries(self, older_than_seconds: float) -> int:
        cutoff, removed = time.time() - older_than_seconds, 0
        for path in self.root.glob(f"*/{_TEMPORARY}*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # its writer finished (renamed it) meanwhile
                pass
        return removed

    def _path(self, key: str, name: str | None = None) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"storage key {key!r} is not 32 hex digits")
        if name is None:
            return self.root / key
        if not _NAME.match(name):
            raise ValueError(f"storage name {name!r} is not allowed")
        return self.root / key / name


def _write_then_rename(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one; a failed write leaves no temporary behind."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=_TEMPORARY)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _storage_failure(root: Path, exc: OSError) -> str:
    reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    return f"cannot store files under {root}: {reason} ({type(exc).__name__})"
