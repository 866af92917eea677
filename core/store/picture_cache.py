"""The result cache: every picture rendered so far, under the key of everything that determines it
(its cache key). Torch-free.

An entry is a small record in the cache's storage naming its files in the PictureStore (by size
and SHA-256) and the picture they show (core.pictures.Picture: what was measured with it); the
bytes live once, in the PictureStore, and jobs refer to the same bytes. A hit is checked first: an
entry whose record is unreadable or whose files are damaged or gone is removed and counts as a
miss, so it is rendered again.

The cache is bounded: :meth:`PictureCache.trim` keeps the most recently used entries that fit in
``max_bytes`` (counting what live jobs hold, which is never deleted), drops entries unused for
``max_idle_seconds`` (the jobs' retention: a picture does not outlive the last job that used it),
and deletes the pictures nothing refers to any more. Entries made from an uploaded photo name it,
and go when it goes (:meth:`PictureCache.forget_photos`).
"""

import hashlib
import json
import time
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError, field_validator

from core.pictures import Picture
from core.store.files import KeyedFiles, PictureRef, PictureStore
from core.store.last_use import LastUse

_ENTRY = "entry"


@dataclass(frozen=True)
class StoredPicture:
    """A picture (without its bytes) and where its bytes are: what a job refers to."""

    picture: Picture
    png: PictureRef
    webp: PictureRef | None  # the animation, when the picture has one


@dataclass(frozen=True)
class Trimmed:
    entries: int  # cache entries dropped (least recently used, idle, or damaged)
    pictures: int  # pictures deleted because nothing refers to them any more
    bytes: int  # ... and their bytes
    kept_entries: int = 0  # cache entries left
    kept_bytes: int = 0  # bytes of the pictures kept, live jobs' included: what ``max_bytes`` bounds


class _Entry(BaseModel):
    """An entry as stored: its files by role (png, webp, grid), the picture they show, the photo it came from."""

    pictures: dict[str, dict]
    picture: Picture | None = None  # None for a grid
    photo: str | None = None

    @field_validator("pictures")
    @classmethod
    def _refs(cls, pictures: dict[str, dict]) -> dict[str, dict]:
        for facts in pictures.values():
            PictureRef.parse(facts)  # ValueError -> ValidationError
        return pictures

    def refs(self) -> dict[str, PictureRef]:
        return {role: PictureRef.parse(facts) for role, facts in self.pictures.items()}


class PictureCache:
    def __init__(
        self,
        entries: KeyedFiles,
        pictures: PictureStore,
        last_use: LastUse,
        max_bytes: int,
        max_idle_seconds: float,
        grace_seconds: float,
    ) -> None:
        """``last_use``: when each entry was last used; ``grace_seconds``: a picture used this recently may
        still be referred to by a batch in progress."""
        self._entries, self._pictures, self.last_use = entries, pictures, last_use
        self._max_bytes, self._max_idle, self._grace = max_bytes, max_idle_seconds, grace_seconds

    def get(self, key: str) -> StoredPicture | None:
        """The entry if it and its files are whole (and marks it used); otherwise removes it: a miss."""
        entry = self._whole(key)
        if entry is None or "png" not in entry.pictures:
            return None
        if entry.picture is None:  # an older layout's entry
            self._delete(key)
            return None
        refs = entry.refs()
        return StoredPicture(entry.picture, refs["png"], refs.get("webp"))

    def put(self, key: str, picture: Picture, photo: str | None) -> StoredPicture:
        """Store a rendered picture's bytes (``photo``: the upload it started from) and its entry."""
        assert picture.png is not None, "the engine hands over every picture with its PNG"
        png = self._pictures.add(picture.png)
        webp = self._pictures.add(picture.webp) if picture.webp is not None else None
        described = picture.model_copy(update={"png": None, "webp": None, "animation": webp is not None})
        self._write(key, {"png": png, **({"webp": webp} if webp else {})}, described, photo)
        return StoredPicture(described, png, webp)

    def get_grid(self, keys: list[str], labels: list[str]) -> PictureRef | None:
        entry = self._whole(_grid_key(keys, labels))
        return None if entry is None or "grid" not in entry.pictures else entry.refs()["grid"]

    def put_grid(self, keys: list[str], labels: list[str], png: bytes, photo: str | None) -> PictureRef:
        ref = self._pictures.add(png)
        self._write(_grid_key(keys, labels), {"grid": ref}, None, photo)
        return ref

    def forget_photos(self, photos: set[str]) -> int:
        """Remove the entries made from these uploads; returns how many."""
        gone = [key for key, entry, _ in self._by_last_use() if entry is not None and entry.photo in photos]
        for key in gone:
            self._delete(key)
        return len(gone)

    def trim(self, live: set[str]) -> Trimmed:
        """Bound the cache (see the module's docstring); ``live``: SHA-256 of the pictures live jobs refer to."""
        sizes = self._pictures.sizes()
        used = sum(sizes.get(sha256, 0) for sha256 in live)
        keep, dropped, kept = set(live), 0, 0
        idle_since = time.time() - self._max_idle
        for key, entry, last_used in self._by_last_use():
            fresh = {ref.sha256 for ref in entry.refs().values()} - keep if entry is not None else set()
            added = sum(sizes.get(sha256, 0) for sha256 in fresh)
            if entry is None or last_used < idle_since or used + added > self._max_bytes:
                self._delete(key)
                dropped += 1
                continue
            keep |= fresh
            used += added
            kept += 1
        deleted, freed = self._pictures.sweep(keep, self._grace)
        return Trimmed(dropped, deleted, freed, kept, used)

    def _whole(self, key: str) -> _Entry | None:
        """The entry, its pictures checked; an unreadable or damaged one is removed."""
        data = self._entries.get(key, _ENTRY)
        if data is None:
            return None
        entry = _parse(data)
        if entry is not None and all(self._pictures.verified(ref) for ref in entry.refs().values()):
            self.last_use.mark([key])
            return entry
        self._delete(key)
        return None

    def _write(self, key: str, refs: dict[str, PictureRef], picture: Picture | None, photo: str | None) -> None:
        entry = _Entry(pictures={role: ref.as_json() for role, ref in refs.items()}, picture=picture, photo=photo)
        self._entries.put(key, _ENTRY, entry.model_dump_json().encode())
        self.last_use.mark([key])

    def _delete(self, key: str) -> None:
        self._entries.delete(key)
        self.last_use.forget([key])

    def _by_last_use(self) -> list[tuple[str, _Entry | None, float]]:
        """Every entry (None: unreadable), most recently used first. A folder without one is skipped while
        its writer may be at work, and removed after that (an older layout's, or a writer's that died)."""
        found, abandoned, used = [], time.time() - self._grace, self.last_use.all()
        for key, files in self._entries.listing().items():
            if _ENTRY in files:
                data = self._entries.get(key, _ENTRY)
                if data is not None:  # else deleted meanwhile
                    found.append((key, _parse(data), used.get(key, files[_ENTRY].written_at)))
            elif max(stored.written_at for stored in files.values()) < abandoned:
                self._delete(key)
        return sorted(found, key=lambda item: item[2], reverse=True)


def _parse(data: bytes) -> _Entry | None:
    """The entry, or None for bytes that are not one (garbage, or an older layout)."""
    try:
        return _Entry.model_validate_json(data)
    except ValidationError:
        return None


def _grid_key(keys: list[str], labels: list[str]) -> str:
    """The contact sheet of these pictures, in this order, with these labels."""
    return hashlib.sha256(json.dumps([keys, labels]).encode()).hexdigest()[:32]
