"""Where result PNGs and uploaded start images live. Torch-free.

Everything is addressed as (key, name): key is a job or image id (32 hex digits, checked before
any path is built, so no request can reach outside the storage root), name a file in it.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

GRID_PNG = "grid.png"
UPLOAD_SOURCE = "source"  # the uploaded bytes, as sent (PNG or JPEG)

_KEY = re.compile(r"^[0-9a-f]{32}$")
_NAME = re.compile(r"^[a-z0-9_]+(\.png|\.webp)?$")


def filter_png(filter_index: int, variant: int = 0) -> str:
    return f"{_filter_stem(filter_index, variant)}.png"


def filter_animation(filter_index: int, variant: int = 0) -> str:
    """The animated WebP of a render's snapshots."""
    return f"{_filter_stem(filter_index, variant)}.webp"


def _filter_stem(filter_index: int, variant: int) -> str:
    return f"filter_{filter_index:04d}" + (f"_v{variant}" if variant else "")


class ResultStorage(Protocol):
    def put(self, key: str, name: str, data: bytes) -> None:
        """Store ``data`` so that readers see either nothing or all of it."""

    def get(self, key: str, name: str) -> bytes | None:
        """The stored bytes, or None."""

    def exists(self, key: str, name: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove everything stored under ``key``."""


class LocalStorage:
    """A directory per key under ``root``; writes go to a temporary file, then ``os.replace``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, name: str, data: bytes) -> None:
        path = self._path(key, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)

    def get(self, key: str, name: str) -> bytes | None:
        try:
            return self._path(key, name).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str, name: str) -> bool:
        return self._path(key, name).is_file()

    def delete(self, key: str) -> None:
        shutil.rmtree(self._path(key), ignore_errors=True)

    def _path(self, key: str, name: str | None = None) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"storage key {key!r} is not 32 hex digits")
        if name is None:
            return self.root / key
        if not _NAME.match(name):
            raise ValueError(f"storage name {name!r} is not allowed")
        return self.root / key / name
