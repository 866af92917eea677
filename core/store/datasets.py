"""Image sets: who uploaded which set, its images, until when it is kept. Torch-free.

A set's record (JSON under ``filterviz:dataset:<id>``) names its owner ('-' without API keys), its images
and its content's fingerprint, and expires ``retention_seconds`` after the upload or its last use; the
built-in demo set (id "demo") is everyone's and never expires. The images are objects
``datasets/<id>/image_<n>.png`` of the uploads' object storage (a folder the uploads' own cleanup never
lists), beside the set's examples indexes (``datasets/<id>/examples/``, core.store.example_indexes), so
deleting a set deletes its indexes too.

Nothing is half-stored: the images are written first and the record last, and when a write fails the
images already written are deleted; images whose record never came (a process died mid-upload) are
deleted by :meth:`ImageSets.sweep` once they are older than any upload takes.
"""

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import cast

from pydantic import BaseModel
from redis import Redis

from core.demo_images import DEMO_DATASET
from core.image_sets import SetImage
from core.store.objects import ObjectStorage

FOLDER = "datasets"
_RECORD = "filterviz:dataset:"  # + id -> the record's JSON
_OWNED = "filterviz:datasets:"  # + caller or '-' -> ids of its sets (members whose record expired are dropped)
_DEMO_LOCK = "filterviz:dataset-demo-lock"
_DEMO_LOCK_SECONDS = 120


class ImageSet(BaseModel):
    id: str
    name: str
    caller: str  # '-' without API keys; '*' for the demo set: everyone's
    images: list[str]  # names, by place
    sizes: list[tuple[int, int]]  # (width, height) of each normalized image
    bytes: int  # of the normalized PNGs
    fingerprint: str  # SHA-256 over the images' hashes: another content is another set for the indexes
    created_at: float

    def visible_to(self, caller: str | None) -> bool:
        return self.caller in ("*", caller or "-")


def image_object(dataset: str, place: int) -> str:
    return f"{FOLDER}/{dataset}/image_{place:05d}.png"


class ImageSets:
    def __init__(self, redis: Redis, objects: ObjectStorage, retention_seconds: int) -> None:
        self._redis, self.objects, self._retention = redis, objects, retention_seconds

    def create(self, name: str, images: list[SetImage], caller: str | None) -> ImageSet:
        """Store ``images`` as a new set of ``caller``'s; StorageError (nothing kept) if a write fails."""
        record = _record(uuid.uuid4().hex, name, images, caller or "-")
        self._write(record, images)
        pipe = self._redis.pipeline()
        pipe.set(_RECORD + record.id, record.model_dump_json(), ex=self._retention)
        pipe.sadd(_OWNED + record.caller, record.id)
        pipe.execute()
        return record

    def demo(self, make: Callable[[], list[SetImage]]) -> ImageSet:
        """The demo set, made with ``make`` the first time any process asks (one maker at a time)."""
        found = self.get(DEMO_DATASET)
        if found is not None:
            return found
        deadline = time.monotonic() + _DEMO_LOCK_SECONDS
        while not self._redis.set(_DEMO_LOCK, "1", nx=True, ex=_DEMO_LOCK_SECONDS):
            if (found := self.get(DEMO_DATASET)) is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if found is not None:
            return found
        try:
            images = make()
            record = _record(DEMO_DATASET, "scikit-image's photographs and crops of them", images, "*")
            self._write(record, images)
            self._redis.set(_RECORD + DEMO_DATASET, record.model_dump_json())
            return record
        finally:
            self._redis.delete(_DEMO_LOCK)

    def get(self, dataset: str) -> ImageSet | None:
        raw = cast(str | None, self._redis.get(_RECORD + dataset)) if _valid_id(dataset) else None
        return None if raw is None else ImageSet.model_validate_json(raw)

    def visible(self, dataset: str, caller: str | None) -> ImageSet | None:
        """The set, where ``caller`` may see it (its own, or the demo set); None otherwise."""
        found = self.get(dataset)
        return found if found is not None and found.visible_to(caller) else None

    def owned(self, caller: str | None) -> list[ImageSet]:
        """``caller``'s sets, oldest first."""
        owner = caller or "-"
        ids = sorted(cast(set[str], self._redis.smembers(_OWNED + owner)))
        found = [self.get(dataset) for dataset in ids]
        gone = [dataset for dataset, record in zip(ids, found, strict=True) if record is None]
        if gone:
            self._redis.srem(_OWNED + owner, *gone)
        return sorted((record for record in found if record is not None), key=lambda record: record.created_at)

    def keep(self, dataset: str) -> None:
        """Used now: kept another retention period (the demo set is kept anyway)."""
        if dataset != DEMO_DATASET:
            self._redis.expire(_RECORD + dataset, self._retention)

    def image(self, dataset: str, place: int) -> bytes | None:
        return self.objects.get(image_object(dataset, place))

    def delete(self, record: ImageSet) -> None:
        """The record first (the set is gone for every reader at once), then its images and indexes."""
        pipe = self._redis.pipeline()
        pipe.delete(_RECORD + record.id)
        pipe.srem(_OWNED + record.caller, record.id)
        pipe.execute()
        self._delete_objects(record.id)

    def sweep(self, older_than_seconds: float) -> int:
        """Delete the objects of sets whose record is gone (expired, or never written) once they are older
        than ``older_than_seconds``; returns how many sets."""
        folders: dict[str, float] = {}
        for stored in self.objects.list(f"{FOLDER}/"):
            dataset = stored.name.split("/")[1]
            folders[dataset] = max(folders.get(dataset, 0.0), stored.written_at)
        cutoff = time.time() - older_than_seconds
        gone = [d for d, written in folders.items() if written < cutoff and not self._redis.exists(_RECORD + d)]
        for dataset in gone:
            self._delete_objects(dataset)
        return len(gone)

    def _write(self, record: ImageSet, images: list[SetImage]) -> None:
        try:
            for place, image in enumerate(images):
                self.objects.put(image_object(record.id, place), image.png)
        except BaseException:
            self._delete_objects(record.id)
            raise

    def _delete_objects(self, dataset: str) -> None:
        for stored in self.objects.list(f"{FOLDER}/{dataset}/"):
            self.objects.delete(stored.name)


def _record(dataset: str, name: str, images: list[SetImage], caller: str) -> ImageSet:
    hashes = [hashlib.sha256(image.png).hexdigest() for image in images]
    return ImageSet(
        id=dataset,
        name=name,
        caller=caller,
        images=[image.name for image in images],
        sizes=[(image.width, image.height) for image in images],
        bytes=sum(len(image.png) for image in images),
        fingerprint=hashlib.sha256(json.dumps(hashes).encode()).hexdigest(),
        created_at=time.time(),
    )


def _valid_id(dataset: str) -> bool:
    """32 hex digits, or the demo set's name: checked before any key or object name is built."""
    return dataset == DEMO_DATASET or (len(dataset) == 32 and all(c in "0123456789abcdef" for c in dataset))
