"""The render request: what a client asks for, validated and normalized. Torch-free.

The same model serves the HTTP API (``POST /v1/jobs``), the CLI and the engine, so a request
means the same thing wherever it enters.
"""

import re
from typing import Annotated, Literal, TypedDict

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

FILTER_SPEC_HELP = "a list of filter numbers, or a string such as '3', '0-19', '0,5,9' or '0-3,8'"
# ASCII digits only: Python's \d and int() also read other scripts' digits ("٣", "３").
_FILTER_PART = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", re.ASCII)
MAX_FILTER_INDEX = 8191  # above every served layer's channel count (at most 2048) and class count (1000)
MAX_FILTER_SPEC_LENGTH = 4096  # characters of a filter string; 256 filters written one by one fit
MAX_FILTER_LIST_LENGTH = MAX_FILTER_INDEX + 1  # numbers in a filter list
ALL_CONV = "all-conv"  # as a request's layers: every conv layer of the model (the API expands it from the catalog)
MAX_LAYER_PARTS = 256  # layers one request may name: above every served model's layer count; settings limit further


_WHOLE_LAYER = "objective 'layer' amplifies the whole layer: leave out filters"
_FILTERS_REQUIRED = "filters is required for objective {objective!r}: " + FILTER_SPEC_HELP


class MethodDefaults(TypedDict):
    """Steps and step size of a method, when a request leaves them out."""

    steps: int
    step_size: float


# classic: the seed's. robust: a quarter of a Lucid render's 512 steps, and the Adam learning rate that
# scored best with the engine's parameter averaging in a sweep (0.15-0.3 within noise); bench/quality.py
# measures them against the reference. maco: robust's budget (bench/quality.py compares the two).
# accentuate: from a photo, which is already a picture; 0.2 moved it visibly where 0.05 hardly did
# (bench/accentuation.py).
METHOD_DEFAULTS: dict[str, MethodDefaults] = {
    "classic": {"steps": 20, "step_size": 1.0},
    "robust": {"steps": 128, "step_size": 0.2},
    "maco": {"steps": 128, "step_size": 0.2},
    "accentuate": {"steps": 32, "step_size": 0.2},
}
# The methods that optimize through random views with Adam: they can show where the gradients were.
ROBUST_FAMILY = ("robust", "maco", "accentuate")
MAX_DIVERSITY = 8
DEFAULT_SIDE = 128  # pixels: the seed's size; a start photo's short side when the request names no size


def start_image_size(width: int, height: int, min_side: int, max_side: int) -> tuple[int, int]:
    """(H, W) for a photo of ``width`` x ``height`` without a size asked: its aspect ratio, the short
    side DEFAULT_SIDE, the long side scaled down if it would pass ``max_side``, both within the limits."""
    scale = min(DEFAULT_SIDE / min(width, height), max_side / max(width, height))
    return _within(height * scale, min_side, max_side), _within(width * scale, min_side, max_side)


def _within(side: float, min_side: int, max_side: int) -> int:
    return min(max_side, max(min_side, round(side)))


Loc = tuple[str | int, ...]


def _field_error(field: str | Loc, message: str, value: object) -> ValidationError:
    """A validation error that names its field (a name, or a path such as ("layers", 3, "filters")),
    raised from a whole-model check."""
    return _field_errors([((field,) if isinstance(field, str) else field, message, value)])


def _field_errors(errors: list[tuple[Loc, str, object]]) -> ValidationError:
    details = [
        InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value)
        for loc, message, value in errors
    ]
    return ValidationError.from_exception_data("RenderSpec", details)


def parse_filters(text: str) -> list[int]:
    """Parse '3', '0-19', '0,5,9' and mixes such as '0-3,8' into sorted, unique filter numbers.

    Time is proportional to the text: the text's length is capped, and every range is checked
    against MAX_FILTER_INDEX before any is expanded, so the expansion has at most that many numbers.
    """
    if len(text) > MAX_FILTER_SPEC_LENGTH:
        raise ValueError(f"the filter string is {len(text)} characters long; at most {MAX_FILTER_SPEC_LENGTH}")
    ranges = [_filter_range(part) for part in text.split(",")]
    filters: set[int] = set()
    for first, last in _merged(ranges):
        filters.update(range(first, last + 1))
    return sorted(filters)


def _filter_range(part: str) -> tuple[int, int]:
    """One comma-separated part, '3' or '0-19', as (first, last), refused when beyond any layer."""
    match = _FILTER_PART.fullmatch(part)
    if not match:
        raise ValueError(f"cannot read {part.strip()!r} as a filter; expected {FILTER_SPEC_HELP}")
    first = int(match.group(1))
    last = first if match.group(2) is None else int(match.group(2))
    if last > MAX_FILTER_INDEX:
        raise ValueError(f"filter {last} is beyond any layer's filter count (at most {MAX_FILTER_INDEX})")
    if last < first:
        raise ValueError(f"filter range {part.strip()!r} runs backwards")
    return first, last


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching ranges joined, so each number is expanded once."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def read_filters(value: object) -> object:
    """A filter field's input as a list: from a filter string or a single number; a list's length is
    capped before each number is validated."""
    if isinstance(value, str):
        return parse_filters(value)
    if isinstance(value, list) and len(value) > MAX_FILTER_LIST_LENGTH:
        raise ValueError(f"{len(value)} filter numbers; at most {MAX_FILTER_LIST_LENGTH}")
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    return value


def normalized_filters(value: list[int] | None) -> list[int] | None:
    """Sorted and unique; no negative numbers."""
    if value is not None and any(f < 0 for f in value):
        raise ValueError("filter numbers must be >= 0")
    return None if value is None else sorted(set(value))


# A filter field: numbers, a filter string ("0-19,40") or one number in; sorted unique numbers out.
Filters = Annotated[
    list[int] | None,
    BeforeValidator(read_filters, json_schema_input_type=list[int] | str | int | None),
    AfterValidator(normalized_filters),
]


class LayerPart(BaseModel):
    """One layer of a several-layer request, and its filters."""

    model_config = ConfigDict(extra="forbid")
    layer: str = Field(
        min_length=1, max_length=100, description=f"layer name or module path, or '{ALL_CONV}': every conv layer"
    )
    filters: Filters = Field(
        default=None, min_length=1, description=f"{FILTER_SPEC_HELP}; left out: the request's filters"
    )


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
    strength: float = Field(
        default=1.0,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="how far the picture may move from the photo: scales the step size",
    )


Init = Annotated[NoiseInit | ImageInit, Field(discriminator="type")]


class RenderSpec(BaseModel):
    """One visualization: which filters of which layer of which model, and how to optimize them."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="vgg16", description="model name, see GET /v1/models")
    layer: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="layer name or module path, e.g. 'block4_conv1'; not used by objective 'class'",
    )
    filters: Filters = Field(
        default=None,
        min_length=1,
        description=f"{FILTER_SPEC_HELP}; class numbers for objective 'class'; left out for objective 'layer'",
    )
    layers: list[LayerPart] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LAYER_PARTS,
        exclude_if=lambda value: value is None,  # a single-layer request's JSON stays as it was
        description="instead of layer: several layers in one job, each with its filters (default: the request's "
        f"filters), one grid per layer; or '{ALL_CONV}', every conv layer of the model",
        examples=[ALL_CONV, [{"layer": "block1_conv1", "filters": "0-7"}, {"layer": "block4_conv1"}]],
    )
    method: Literal["classic", "robust", "maco", "accentuate"] = Field(
        default="classic",
        description="classic: the seed's pixel gradient ascent; robust: Fourier parameterization, "
        "decorrelated color, transformation robustness and Adam (Distill/Lucid); maco: only the phase of a "
        "natural-image magnitude spectrum is optimized, through random crops and noise (Fel et al. 2023); "
        "accentuate: the start photo (init type image, required) with the filter's pattern grown into it, "
        "its own features kept close (Hamblin et al. 2024)",
    )
    objective: Literal["channel", "neuron", "layer", "class"] = Field(
        default="channel",
        description="channel: a filter's mean activation; neuron: the filter at the center position; "
        "layer: the whole layer (DeepDream, best with a start image); class: a class logit of the full model",
    )
    diversity: int = Field(default=1, ge=1, le=MAX_DIVERSITY, description="different pictures per filter")
    steps: int | None = Field(
        default=None,
        ge=1,
        description="default per method: " + ", ".join(f"{m} {d['steps']}" for m, d in METHOD_DEFAULTS.items()),
    )
    step_size: float | None = Field(
        default=None,
        gt=0,
        le=1e4,
        allow_inf_nan=False,
        description="classic: pixels per step on RMS-normalized gradients (1.0); the others: Adam's learning rate "
        "(" + ", ".join(f"{m} {d['step_size']}" for m, d in METHOD_DEFAULTS.items() if m != "classic") + ")",
    )
    size: tuple[int, int] = Field(
        default=(DEFAULT_SIDE, DEFAULT_SIDE),
        description=f"image side in pixels, or [height, width]; from a photo: {DEFAULT_SIDE} on its short side, "
        "aspect ratio kept",
    )
    seed: int = Field(default=0, ge=0, lt=2**63)
    init: Init = Field(default_factory=NoiseInit)
    snapshots: int = Field(
        default=0, ge=0, description="keep a frame every N steps and make an animated WebP per filter; 0: none"
    )

    transparency: bool = Field(
        default=False,
        description="robust, maco, accentuate: an RGBA PNG whose alpha is the gradient magnitude accumulated "
        "over the steps (MACO's attribution): the parts of the picture that matter stand out",
    )
    precision: Literal["fp32", "bf16"] = Field(
        default="fp32",
        description="arithmetic of the optimization's forward passes: fp32, or bf16 (autocast; several times "
        "faster on CPUs with AMX/AVX512-BF16 and on GPUs, pictures nearly as strong). Activations are always "
        "measured in fp32",
    )
    previews: bool = Field(
        default=False,
        description="send `preview` events with small pictures of the filters as they form on the job's event "
        "stream (GET /v1/jobs/{id}/events), about once a second; the pictures are the same without",
    )

    @field_validator("layers", mode="before", json_schema_input_type=list[LayerPart] | Literal["all-conv"] | None)
    @classmethod
    def _read_layers(cls, value: object) -> object:
        if isinstance(value, str):
            if value != ALL_CONV:
                raise ValueError(f"layers is a list of {{layer, filters}} or {ALL_CONV!r}, not {value[:100]!r}")
            return [{"layer": ALL_CONV}]
        return value

    @field_validator("size", mode="before", json_schema_input_type=tuple[int, int] | int)
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

    @model_validator(mode="after")
    def _complete(self) -> "RenderSpec":
        """Fill in what the objective and method imply, and refuse combinations that mean nothing."""
        if self.layers is not None:
            self._complete_layers()
        elif self.objective == "class":
            if self.layer not in (None, "logits"):
                raise _field_error("layer", "objective 'class' uses the model's output: leave out layer", self.layer)
            self.layer = "logits"
        elif self.layer is None:
            raise _field_error("layer", f"layer is required for objective {self.objective!r}", None)
        if self.objective == "layer":
            if self.filters not in (None, [0]):
                raise _field_error("filters", _WHOLE_LAYER, self.filters)
            self.filters = None if self.layers is not None else [0]
        elif self.filters is None and self.layers is None:
            raise _field_error("filters", _FILTERS_REQUIRED.format(objective=self.objective), None)
        if self.method == "accentuate" and not isinstance(self.init, ImageInit):
            raise _field_error(
                "init",
                "method 'accentuate' grows the filter's pattern into a photo: init must be "
                '{"type": "image", "image_id": ...} (POST /v1/images)',
                self.init.type,
            )
        if self.transparency and self.method not in ROBUST_FAMILY:
            raise _field_error(
                "transparency",
                f"transparency maps come from the gradients of methods {', '.join(ROBUST_FAMILY)}; "
                f"method {self.method!r} has none",
                self.transparency,
            )
        defaults = METHOD_DEFAULTS[self.method]
        self.steps = defaults["steps"] if self.steps is None else self.steps
        self.step_size = defaults["step_size"] if self.step_size is None else self.step_size
        return self

    def _complete_layers(self) -> None:
        """Each of several layers gets its filters (the request's unless it names its own; objective 'layer':
        none), which the request then no longer carries."""
        assert self.layers is not None
        if self.objective == "class":
            names = [part.layer for part in self.layers]
            raise _field_error("layers", "objective 'class' uses the model's output: leave out layers", names)
        if self.layer is not None:
            raise _field_error("layer", "name either layer or layers, not both", self.layer)
        errors: list[tuple[Loc, str, object]] = []
        for index, part in enumerate(self.layers):
            loc = ("layers", index, "filters")
            if self.objective == "layer":
                if part.filters not in (None, [0]):
                    errors.append((loc, _WHOLE_LAYER, part.filters))
                part.filters = [0]
            elif part.filters is None:
                part.filters = self.filters
                if part.filters is None:
                    message = _FILTERS_REQUIRED.format(objective=self.objective) + " (the request's or this layer's)"
                    errors.append((loc, message, None))
        if errors:
            raise _field_errors(errors)
        if self.objective != "layer":
            self.filters = None

    def parts(self) -> list["RenderSpec"]:
        """The request as one single-layer request per layer (itself when it names one layer): what
        validation, costs, batch rows, cache keys and the engine take."""
        if self.layers is None:
            return [self]
        return [
            self.model_copy(update={"layer": part.layer, "filters": part.filters, "layers": None})
            for part in self.layers
        ]
