"""Where result pictures, uploaded start images and cache entries live, on any ObjectStorage
(core.store.objects: a local directory or an S3 bucket). Torch-free.

Files are addressed as (key, name): key is a job or image id (32 hex digits, checked before any
name is built, so no request can reach outside the storage), name a file in it. Pictures are
stored once, named by the SHA-256 of their bytes (:class:`PictureStore`); a job's folder holds
only the list of the pictures it refers to (:class:`JobResults`), and every read checks a
picture's size and hash, so damaged bytes are reported, never served.
"""

import hashlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import DamagedPicture
from core.store.last_use import LastUse
from core.store.objects import ObjectStorage, StoredObject

GRID_PNG = "grid.png"
UPLOAD_SOURCE = "source"  # the uploaded bytes, as sent (PNG or JPEG)
PICTURES = "pictures"  # the folder of the result storage that holds every picture once

_KEY = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MANIFEST = "pictures"  # in a job's folder: its file names -> the pictures they are
_NAME = re.compile(r"^[a-z0-9_]+(\.png|\.webp)?$")


def filter_png(filter_index: int, variant: int = 0, part: int | None = None) -> str:
    """``part``: which of a several-layer job's layers (None: a job of one layer)."""
    return f"{_filter_stem(filter_index, variant, part)}.png"


def filter_animation(filter_index: int, variant: int = 0, part: int | None = None) -> str:
    """The animated WebP of a render's snapshots."""
    return f"{_filter_stem(filter_index, variant, part)}.webp"


def grid_png(part: int | None = None) -> str:
    """The contact sheet of a job of one layer, or of the ``part``-th layer of a several-layer job."""
    return _part_prefix(part) + GRID_PNG


def _filter_stem(filter_index: int, variant: int, part: int | None) -> str:
    return _part_prefix(part) + f"filter_{filter_index:04d}" + (f"_v{variant}" if variant else "")


def _part_prefix(part: int | None) -> str:
    """Layer names have dots, storage names may not: a several-layer job's files go by the layer's index."""
    return "" if part is None else f"layer_{part:03d}_"


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


class KeyedFiles:
    """Files grouped under a key (a job or image id, or a cache key): object ``<key>/<name>``. The key is
    32 hex digits and the name a plain file name, checked before the storage is asked."""

    def __init__(self, objects: ObjectStorage) -> None:
        self.objects = objects

    def put(self, key: str, name: str, data: bytes) -> None:
        """Store ``data`` whole (readers see the old bytes or all of the new); StorageError if it cannot."""
        self.objects.put(_object(key, name), data)

    def get(self, key: str, name: str) -> bytes | None:
        return self.objects.get(_object(key, name))

    def exists(self, key: str, name: str) -> bool:
        return self.objects.head(_object(key, name)) is not None

    def delete(self, key: str) -> None:
        """Remove everything stored under ``key``."""
        for stored in self.objects.list(f"{_checked_key(key)}/"):
            self.objects.delete(stored.name)

    def listing(self) -> dict[str, dict[str, StoredObject]]:
        """What is stored under every key: key -> file name -> the object."""
        found: dict[str, dict[str, StoredObject]] = {}
        for stored in self.objects.list():
            key, _, name = stored.name.partition("/")
            if _KEY.match(key) and _NAME.match(name):
                found.setdefault(key, {})[name] = stored
        return found

    def keys(self) -> list[str]:
        """Every key something is stored under."""
        return sorted(self.listing())

    def discard_temporaries(self, older_than_seconds: float) -> int:
        return self.objects.discard_temporaries(older_than_seconds)


class PictureStore:
    """Every picture once, as object ``pictures/<sha256>``: jobs and cache entries refer to it by its
    :class:`PictureRef`. Its last use is kept in Redis (core.store.last_use); :meth:`sweep` keeps recent ones."""

    def __init__(self, objects: ObjectStorage, last_use: LastUse) -> None:
        self.objects, self.last_use = objects, last_use

    def add(self, data: bytes) -> PictureRef:
        """Store ``data`` unless a whole copy is there already; StorageError if it cannot."""
        ref = PictureRef.of(data)
        stored = self.objects.head(_picture(ref.sha256))
        if stored is None or stored.size != ref.size:
            self.objects.put(_picture(ref.sha256), data)
        self.last_use.mark([ref.sha256])
        return ref

    def read(self, ref: PictureRef) -> bytes | None:
        """The picture's bytes, None if it is not stored; DamagedPicture if they are not what was stored."""
        data = self.objects.get(_picture(ref.sha256))
        if data is None:
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
        self.last_use.mark([ref.sha256])
        return True

    def presigned_url(self, ref: PictureRef, seconds: int, media_type: str, cache_control: str) -> str | None:
        """A short-lived URL of the picture's bytes, None if it is not stored; DamagedPicture if its size is
        wrong (the bytes themselves are not read: that is what a redirect saves)."""
        stored = self.objects.head(_picture(ref.sha256))
        if stored is None:
            return None
        if stored.size != ref.size:
            raise DamagedPicture(f"{stored.size} of its {ref.size} bytes are stored")
        return self.objects.presigned_url(_picture(ref.sha256), seconds, media_type, cache_control)

    def delete(self, sha256: str) -> None:
        self.objects.delete(_picture(sha256))
        self.last_use.forget([sha256])

    def sizes(self) -> dict[str, int]:
        """Bytes of every stored picture, by SHA-256."""
        return {sha256: stored.size for sha256, stored in self._stored().items()}

    def sweep(self, keep: set[str], unused_for_seconds: float) -> tuple[int, int]:
        """Delete the pictures not in ``keep`` and unused this long; returns (pictures, bytes) deleted."""
        cutoff, deleted, freed = time.time() - unused_for_seconds, 0, 0
        used = self.last_use.all()
        for sha256, stored in self._stored().items():
            if sha256 not in keep and used.get(sha256, stored.written_at) < cutoff:
                self.delete(sha256)  # another worker's sweep may have been first: deleting twice is fine
                deleted, freed = deleted + 1, freed + stored.size
        return deleted, freed

    def _stored(self) -> dict[str, StoredObject]:
        found = {}
        for stored in self.objects.list(f"{PICTURES}/"):
            sha256 = stored.name.removeprefix(f"{PICTURES}/")
            if _SHA256.match(sha256):
                found[sha256] = stored
        return found


class JobResults:
    """The pictures of each job: object ``<job id>/pictures`` maps its file names (``filter_0003.png``,
    ``grid.png``) to the :class:`PictureRef` of a picture in the :class:`PictureStore`, beside it."""

    def __init__(self, objects: ObjectStorage, last_use: LastUse) -> None:
        self.pictures = PictureStore(objects, last_use)
        self._lists = KeyedFiles(objects)

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
        """Half-written lists and pictures."""
        return self._lists.discard_temporaries(older_than_seconds)


def _object(key: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"storage name {name!r} is not allowed")
    return f"{_checked_key(key)}/{name}"


def _checked_key(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"storage key {key!r} is not 32 hex digits")
    return key


def _picture(sha256: str) -> str:
    return f"{PICTURES}/{_checked_sha256(sha256)}"


def _checked_sha256(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValueError(f"picture name {sha256!r} is not 64 hex digits")
    return sha256
