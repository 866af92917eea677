"""Examples indexes: their builds' state in Redis, the indexes and their PNGs in object storage. Torch-free.

A build's state (JSON under ``filterviz:examples-build:<index key>``) goes queued -> running -> succeeded
or failed. The first asker creates it atomically (a Lua SET NX that also replaces a failed one), so one
build runs however many ask at once; it lapses after ``build_seconds`` (a worker that died mid-build
leaves nothing stuck for longer). The index itself (core.example_index) is the object
``datasets/<dataset>/examples/<key>/index``, beside its PNGs ``.../<sha256>`` (content-addressed: a crop or
thumbnail shared by several filters is stored once); the PNGs are written first, the index last, so an
index that is there is whole. Every PNG read is checked against its hash.
"""

import hashlib
import time
from typing import Literal, cast

from pydantic import BaseModel
from redis import Redis

from core.errors import DamagedPicture
from core.example_index import ExampleIndex
from core.store.datasets import FOLDER
from core.store.objects import ObjectStorage

BuildStatus = Literal["queued", "running", "succeeded", "failed"]
_BUILD = "filterviz:examples-build:"  # + index key
_INDEX = "index"

# create a build unless a live or finished one is there; a failed one is replaced (the next asker retries)
_START = """
local found = redis.call('GET', KEYS[1])
if found and not string.find(found, '"status":"failed"', 1, true) then return found end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""


class BuildState(BaseModel):
    key: str
    status: BuildStatus
    model: str
    layer: str  # the catalog's name
    weights: str  # the weight file's identity the API saw
    dataset: str
    k: int
    side: int
    images: int
    done: int = 0  # images through the network so far
    error: str | None = None
    created_at: float
    updated_at: float


class ExampleIndexes:
    def __init__(self, redis: Redis, objects: ObjectStorage, build_seconds: int) -> None:
        self._redis, self.objects, self._seconds = redis, objects, build_seconds
        self._start = redis.register_script(_START)

    def start(self, state: BuildState) -> tuple[BuildState, bool]:
        """The build of ``state.key``: the one already there (False), or ``state`` itself, queued now (True)."""
        found = self._start(keys=[_BUILD + state.key], args=[state.model_dump_json(), self._seconds])
        return (BuildState.model_validate_json(found), False) if found else (state, True)

    def state(self, key: str) -> BuildState | None:
        raw = cast(str | None, self._redis.get(_BUILD + key))
        return None if raw is None else BuildState.model_validate_json(raw)

    def update(self, state: BuildState, status: BuildStatus, **fields: object) -> BuildState:
        new = state.model_copy(update={"status": status, "updated_at": time.time(), **fields})
        self._redis.set(_BUILD + state.key, new.model_dump_json(), ex=self._seconds)
        return new

    def put(self, key: str, index: ExampleIndex, pictures: dict[str, bytes]) -> None:
        """The PNGs, then the index that names them; StorageError if a write is refused."""
        for sha256, data in pictures.items():
            if self.objects.head(_object(index.dataset, key, sha256)) is None:
                self.objects.put(_object(index.dataset, key, sha256), data)
        self.objects.put(_object(index.dataset, key, _INDEX), index.encoded())

    def get(self, dataset: str, key: str) -> ExampleIndex | None:
        raw = self.objects.get(_object(dataset, key, _INDEX))
        return None if raw is None else ExampleIndex.model_validate_json(raw)

    def exists(self, dataset: str, key: str) -> bool:
        return self.objects.head(_object(dataset, key, _INDEX)) is not None

    def picture(self, dataset: str, key: str, sha256: str) -> bytes | None:
        """A crop or thumbnail PNG; None if there is none, DamagedPicture if its bytes are not its hash."""
        data = self.objects.get(_object(dataset, key, sha256))
        if data is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise DamagedPicture("the stored crop's bytes changed since they were stored (SHA-256 mismatch)")
        return data

    def sizes(self, dataset: str, key: str) -> int:
        """Bytes stored for the index (its JSON and PNGs)."""
        return sum(stored.size for stored in self.objects.list(f"{FOLDER}/{dataset}/examples/{key}/"))


def _object(dataset: str, key: str, name: str) -> str:
    if not (len(key) == 32 and all(c in "0123456789abcdef" for c in key)):
        raise ValueError(f"index key {key!r} is not 32 hex digits")
    if name != _INDEX and not (len(name) == 64 and all(c in "0123456789abcdef" for c in name)):
        raise ValueError(f"picture name {name!r} is not 64 hex digits")
    return f"{FOLDER}/{dataset}/examples/{key}/{name}"
