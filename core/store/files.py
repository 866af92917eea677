"""Where result pictures and uploaded start images live. Torch-free.

Files are addressed as (key, name): key is a job or image id (32 hex digits, checked before any
path is built, so no request can reach outside the storage root), name a file in it. Pictures are
stored once, named by the SHA-256 of their bytes (:class:`PictureStore`); a job's directory holds
only the list of the pictures it refers to (:class:`JobResults`), and every read checks a
picture's size and hash, so damaged bytes are reported, never served.
"""

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.errors import DamagedPicture, StorageError

GRID_PNG = "grid.png"
UPLOAD_SOURCE = "source"  # the uploaded bytes, as sent (PNG or JPEG)
PICTURES = "pictures"  # the folder of the storage root that holds every picture once

_KEY = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MANIFEST = "pictures"  # in a job's directory: its file names -> the pictures they are
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


@dataclass(frozen=True)
class PictureRef:
    """A stored picture: what its bytes hash to and how many there are."""

    sha256: str
    size: int

    @classmethod
    def of(cls, data: bytes) -> "PictureRef":
        return cls(hashlib.sha256(data).hexdigest(), len(data))

    @classmethod
    def parse(cls, facts: object) -> "PictureRef":
        """From its JSON form; ValueError for anything else."""
        if not isinstance(facts, dict) or not _SHA256.match(str(facts.get("sha256"))):
            raise ValueError(f"not a picture reference: {facts!r}")
        size = facts.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"not a picture size: {size!r}")
        return cls(facts["sha256"], size)

    def as_json(self) -> dict[str, object]:
        return {"sha256": self.sha256, "size": self.size}


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

    def last_used(self, key: str, name: str | None = None) -> float | None:
        """When the file (or the key's folder) was written or last :meth:`touch`ed, in epoch seconds;
        None if it is not there."""
        try:
            return self._path(key, name).stat().st_mtime
        except FileNotFoundError:
            return None

    def touch(self, key: str, name: str) -> None:
        """Mark the file used now (the result cache evicts the least recently used first)."""
        _touch(self._path(key, name))

    def _path(self, key: str, name: str | None = None) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"storage key {key!r} is not 32 hex digits")
        if name is None:
            return self.root / key
        if not _NAME.match(name):
            raise ValueError(f"storage name {name!r} is not allowed")
        return self.root / key / name


class PictureStore:
    """Every picture once, in ``root/pictures/<sha256>``: jobs and cache entries refer to it by its
    :class:`PictureRef`. A picture's file time is its last use; :meth:`sweep` keeps recent ones."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._folder = root / PICTURES

    def add(self, data: bytes) -> PictureRef:
        """Store ``data`` unless a whole copy is there already; StorageError if it cannot."""
        ref = PictureRef.of(data)
        path = self._folder / ref.sha256
        try:
            if _size(path) == ref.size:
                _touch(path)
            else:
                self._folder.mkdir(parents=True, exist_ok=True)
                _write_then_rename(path, data)
        except OSError as exc:
            raise StorageError(_storage_failure(self.root, exc)) from None
        return ref

    def read(self, ref: PictureRef) -> bytes | None:
        """The picture's bytes, None if it is not stored; DamagedPicture if they are not what was stored."""
        try:
            data = (self._folder / _checked_sha256(ref.sha256)).read_bytes()
        except FileNotFoundError:
            return None
        if len(data) != ref.size:
            raise DamagedPicture(f"{len(data)} of its {ref.size} bytes are stored")
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise DamagedPicture("its bytes changed since they were stored (SHA-256 mismatch)")
        return data

    def verified(self, ref: PictureRef) -> bool:
        """The picture is stored whole (and is marked used now); a damaged copy is deleted."""
        try:
            if self.read(ref) is None:
                return False
        except DamagedPicture:
            self.delete(ref.sha256)
            return False
        _touch(self._folder / ref.sha256)
        return True

    def delete(self, sha256: str) -> None:
        (self._folder / _checked_sha256(sha256)).unlink(missing_ok=True)

    def sizes(self) -> dict[str, int]:
        """Bytes of every stored picture, by SHA-256."""
        try:
            entries = list(os.scandir(self._folder))
        except FileNotFoundError:
            return {}
        return {entry.name: _size(Path(entry.path)) or 0 for entry in entries if _SHA256.match(entry.name)}

    def sweep(self, keep: set[str], unused_for_seconds: float) -> tuple[int, int]:
        """Delete the pictures not in ``keep`` and unused this long; returns (pictures, bytes) deleted."""
        cutoff, deleted, freed = time.time() - unused_for_seconds, 0, 0
        for sha256, size in self.sizes().items():
            path = self._folder / sha256
            try:
                if sha256 not in keep and path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted, freed = deleted + 1, freed + size
            except FileNotFoundError:  # another worker's sweep was first
                pass
        return deleted, freed


class JobResults:
    """The pictures of each job: ``root/<job id>/pictures`` maps its file names (``filter_0003.png``,
    ``grid.png``) to the :class:`PictureRef` of a picture in the :class:`PictureStore`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pictures = PictureStore(root)
        self._lists = LocalStorage(root)

    def refer(self, job_id: str, refs: dict[str, PictureRef]) -> None:
        """The job's pictures, all at once (atomically); StorageError if they cannot be written down."""
        self._lists.put(job_id, _MANIFEST, json.dumps({name: ref.as_json() for name, ref in refs.items()}).encode())

    def put(self, job_id: str, name: str, data: bytes) -> None:
        """Store one more file of the job."""
        self.refer(job_id, {**self.refs(job_id), name: self.pictures.add(data)})

    def get(self, job_id: str, name: str) -> bytes | None:
        """The file's bytes, None if the job has none of that name; DamagedPicture if they are damaged."""
        ref = self.refs(job_id).get(name)
        return None if ref is None else self.pictures.read(ref)

    def exists(self, job_id: str, name: str) -> bool:
        return name in self.refs(job_id)

    def refs(self, job_id: str) -> dict[str, PictureRef]:
        """The job's file names and their pictures; DamagedPicture if the list itself is damaged."""
        listed = self._lists.get(job_id, _MANIFEST)
        if listed is None:
            return {}
        try:
            return {name: PictureRef.parse(facts) for name, facts in json.loads(listed).items()}
        except (ValueError, AttributeError) as exc:
            raise DamagedPicture(f"the list of pictures of job {job_id} is damaged: {exc}") from None

    def referenced(self, job_ids: Iterable[str]) -> set[str]:
        """The SHA-256 of every picture these jobs refer to (a damaged list refers to none)."""
        found: set[str] = set()
        for job_id in job_ids:
            try:
                found.update(ref.sha256 for ref in self.refs(job_id).values())
            except DamagedPicture:
                pass
        return found

    def delete(self, job_id: str) -> None:
        """Forget the job's pictures (the sweep deletes those nothing else refers to)."""
        self._lists.delete(job_id)

    def keys(self) -> list[str]:
        return self._lists.keys()

    def discard_temporaries(self, older_than_seconds: float) -> int:
        """Half-written lists and pictures (both lie one folder below the root)."""
        return self._lists.discard_temporaries(older_than_seconds)


def _checked_sha256(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValueError(f"picture name {sha256!r} is not 64 hex digits")
    return sha256


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except FileNotFoundError:  # deleted meanwhile: the next reader finds it missing
        pass


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
