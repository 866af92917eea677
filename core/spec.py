"""The render request: what a client asks for, validated and normalized. Torch-free.

The same model serves the HTTP API (``POST /v1/jobs``), the CLI and the engine, so a request
means the same thing wherever it enters.
"""

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FILTER_SPEC_HELP = "a list of filter numbers, or a string such as '3', '0-19', '0,5,9' or '0-3,8'"
_FILTER_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_MAX_FILTER_INDEX = 1 << 20  # far above any real channel count; keeps "0-99999999" from allocating


def parse_filters(text: str) -> list[int]:
    """Parse '3', '0-19', '0,5,9' and mixes such as '0-3,8' into sorted, unique filter numbers."""
    filters: set[int] = set()
    for part in text.split(","):
        match = _FILTER_PART.match(part)
        if not match:
            raise ValueError(f"cannot read {part.strip()!r} as a filter; expected {FILTER_SPEC_HELP}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValueError(f"filter range {part.strip()!r} runs backwards")
        if last > _MAX_FILTER_INDEX:
            raise ValueError(f"filter {last} is beyond any layer's filter count")
        filters.update(range(first, last + 1))
    return sorted(filters)


class NoiseInit(BaseModel):
    """Start from Gaussian noise in 0..255 pixel space (the seed: mean 127, std 10)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["noise"] = "noise"
    mean: float = Field(default=127.0, ge=0, le=255, allow_inf_nan=False)
    std: float = Field(default=10.0, ge=0, le=128, allow_inf_nan=False)


class ImageInit(BaseModel):
    """Start from an uploaded image (``POST /v1/images``), resized to the render size."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["image"]
    image_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="id returned by POST /v1/images")


Init = Annotated[NoiseInit | ImageInit, Field(discriminator="type")]


class RenderSpec(BaseModel):
    """One visualization: which filters of which layer of which model, and how to optimize them."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="vgg16", description="model name, see GET /v1/models")
    layer: str = Field(min_length=1, max_length=100, description="layer name or module path, e.g. 'block4_conv1'")
    filters: list[int] = Field(min_length=1, description=FILTER_SPEC_HELP)
    method: Literal["classic"] = "classic"
    steps: int = Field(default=20, ge=1)
    step_size: float = Field(default=1.0, gt=0, le=1e4, allow_inf_nan=False)
    size: tuple[int, int] = Field(default=(128, 128), description="image side in pixels, or [height, width]")
    seed: int = Field(default=0, ge=0, lt=2**63)
    init: Init = Field(default_factory=NoiseInit)

    @field_validator("filters", mode="before")
    @classmethod
    def _read_filters(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_filters(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return [value]
        return value

    @field_validator("filters")
    @classmethod
    def _normalize_filters(cls, value: list[int]) -> list[int]:
        if any(f < 0 for f in value):
            raise ValueError("filter numbers must be >= 0")
        return sorted(set(value))

    @field_validator("size", mode="before")
    @classmethod
    def _read_size(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return (value, value)
        return value

    @field_validator("size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError("size must be positive")
        return value
