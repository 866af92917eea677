"""Errors a request can run into, each saying what is valid. Torch-free, shared by engine, API and CLI."""


class FilterVizError(Exception):
    """Base class. ``field`` names the request field at fault, where there is one."""

    field: str | None = None


class UnknownModel(FilterVizError):
    field = "model"


class UnknownLayer(FilterVizError):
    field = "layer"


class FilterOutOfRange(FilterVizError):
    field = "filters"


class SizeOutOfRange(FilterVizError):
    field = "size"


class InvalidImage(FilterVizError):
    field = "image"


class StorageError(FilterVizError):
    """Result or upload storage refused a write (full, read-only, no permission); the message says which."""


class WeightsUnavailable(FilterVizError):
    """The model's weight file is not on this machine; the message says where it was looked for."""

    field = "model"


def list_valid(names: list[str], limit: int = 40) -> str:
    """'a, b, c' — or the first ``limit`` names and how many more, for very long lists."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … ({len(names) - limit} more)"
