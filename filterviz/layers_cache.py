"""``filterviz layers``'s catalog, kept as JSON files so that printing it needs no torch.

A model's layer table at a size is fixed by its entry and code alone (the architecture: no weights are
read), yet computing it imports torch, torchvision and timm (seconds). Each answer is kept under
``$XDG_CACHE_HOME/filterviz/layers/`` (``~/.cache/filterviz/layers/``), named by the model, the size,
the entry's fingerprint (core.model_config, from the built-ins or the models file) and a version: a
hash of the engine's source and the versions of the libraries that build the networks, so a change to
any of them makes a new file. A model no entry names is never cached (the engine says what is wrong).
An unreadable or unwritable cache is no error: the table is computed as if there were none.
"""

import hashlib
import json
import os
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from core.model_config import ModelsFileError, model_table
from core.settings import Settings

ARCHITECTURE_PACKAGES = ("torch", "torchvision", "timm")  # what builds the networks the table describes
ENGINE_SOURCES = ("*.py", "*.toml")


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "filterviz" / "layers"


def catalog_version() -> str:
    """A hash of the engine's source files and the architecture packages' versions."""
    digest = hashlib.sha256()
    spec = find_spec("core.engine")  # found, not imported: that would import torch
    assert spec is not None and spec.submodule_search_locations, "core.engine is a package"
    engine = Path(spec.submodule_search_locations[0])
    for pattern in ENGINE_SOURCES:
        for path in sorted(engine.rglob(pattern)):
            digest.update(path.relative_to(engine).as_posix().encode() + b"\0" + path.read_bytes())
    for package in ARCHITECTURE_PACKAGES:
        try:
            digest.update(f"{package}=={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package} missing".encode())
    return digest.hexdigest()[:16]


def _path(model: str, size: tuple[int, int]) -> Path | None:
    """The model's file at this size; None for a name no entry of this process's table has."""
    try:
        entry = model_table(Settings().models_file).get(model)
    except ModelsFileError:
        return None
    if entry is None:
        return None
    return cache_dir() / f"{model}-{size[0]}x{size[1]}-{entry.fingerprint()}-{catalog_version()}.json"


def cached_layers(model: str, size: tuple[int, int]) -> list[dict] | None:
    """The layers (LayerInfo.to_dict()) computed before for this model and size, or None."""
    path = _path(model, size)
    try:
        layers = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return None
    return layers if isinstance(layers, list) else None


def keep_layers(model: str, size: tuple[int, int], layers: list[dict]) -> None:
    """Write the layers for next time (temp file + rename: a reader never sees half a file)."""
    path = _path(model, size)
    if path is None:
        return
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(layers))
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
