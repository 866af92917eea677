"""The result cache: every picture rendered so far, under the key of everything that determines it
(core.engine.identity). Torch-free. Entries never change; a repeated or overlapping request copies
them instead of rendering again.
"""

import hashlib
import json
from dataclasses import dataclass

from core.storage import ResultStorage

_PNG = "picture.png"
_ANIMATION = "animation.webp"
_META = "meta"  # written last: an entry with meta is complete
_GRID = "grid.png"


@dataclass(frozen=True)
class CachedPicture:
    png: bytes
    animation: bytes | None
    activation: float
    start_activation: float
    dead: bool


class PictureCache:
    def __init__(self, storage: ResultStorage) -> None:
        self._storage = storage

    def get(self, key: str) -> CachedPicture | None:
        meta = self._storage.get(key, _META)
        png = self._storage.get(key, _PNG) if meta is not None else None
        if meta is None or png is None:
            return None
        facts = json.loads(meta)
        animation = self._storage.get(key, _ANIMATION) if facts.pop("animation") else None
        return CachedPicture(png=png, animation=animation, **facts)

    def put(self, key: str, picture: CachedPicture) -> None:
        self._storage.put(key, _PNG, picture.png)
        if picture.animation is not None:
            self._storage.put(key, _ANIMATION, picture.animation)
        facts = {
            "activation": picture.activation,
            "start_activation": picture.start_activation,
            "dead": picture.dead,
            "animation": picture.animation is not None,
        }
        self._storage.put(key, _META, json.dumps(facts).encode())

    def get_grid(self, keys: list[str], labels: list[str]) -> bytes | None:
        return self._storage.get(_grid_key(keys, labels), _GRID)

    def put_grid(self, keys: list[str], labels: list[str], png: bytes) -> None:
        self._storage.put(_grid_key(keys, labels), _GRID, png)


def _grid_key(keys: list[str], labels: list[str]) -> str:
    """The contact sheet of these pictures, in this order, with these labels."""
    return hashlib.sha256(json.dumps([keys, labels]).encode()).hexdigest()[:32]
