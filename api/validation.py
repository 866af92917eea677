"""Checks of a render request before anything is queued: limits, the catalog, the start image, the webhook.

Pure functions of the request, the settings and the :class:`SubmitFacts` the route looked up first
(api.deps.submit_facts: Redis, the upload directory, DNS), so that each check reads only its inputs.
"""

from dataclasses import dataclass

from api.problems import FieldError, field_error
from core.catalog import LayerEntry, ModelEntry, find_layer
from core.errors import ForbiddenTarget, list_valid
from core.job_cost import LayerCost, frame_count, job_work_flops, memory_bytes, optimized_size, pictures, views
from core.settings import Settings
from core.spec import ALL_CONV, ImageInit, LayerPart, RenderSpec, start_image_size

Loc = list[str | int]
CONV_TYPE = "Conv2d"  # a catalog layer of this type is a conv layer (as `filterviz render --layer all-conv` takes)


@dataclass(frozen=True)
class StartImage:
    """What the uploads know of a request's start image."""

    usable: bool  # stored, and uploaded by the caller: another caller's image is as good as absent
    size: tuple[int, int] | None  # (width, height) as uploaded; None: unknown


@dataclass(frozen=True)
class SubmitFacts:
    """What validating a request needs from outside the request: looked up by the route, once."""

    models: dict[str, ModelEntry]  # the served models, as the workers published them
    start_image: StartImage | None  # None: the request starts from noise
    webhook_refusal: ForbiddenTarget | None  # why the webhook's target may not receive it; None: it may, or none


def request_errors(spec: RenderSpec, webhook: str | None, settings: Settings, facts: SubmitFacts) -> list[FieldError]:
    """Every reason to refuse ``spec`` (and its ``webhook``), each naming its field."""
    return [
        *limit_errors(spec, settings),
        *catalog_errors(spec, facts.models),
        *cost_errors(spec, settings, facts.models),
        *upload_errors(spec, facts.start_image),
        *webhook_errors(webhook, settings, facts.webhook_refusal),
    ]


def with_conv_layers(spec: RenderSpec, models: dict[str, ModelEntry]) -> RenderSpec:
    """``spec`` with each layer named 'all-conv' replaced by every conv layer of its model, in the model's
    order and with that part's filters: the job record names the layers it renders. An unknown model is
    left to catalog_errors."""
    entry = models.get(spec.model)
    if spec.layers is None or entry is None or all(part.layer != ALL_CONV for part in spec.layers):
        return spec
    conv = [layer.name for layer in entry.layers if layer.type == CONV_TYPE]
    layers = [
        expanded
        for part in spec.layers
        for expanded in (
            [LayerPart(layer=name, filters=part.filters) for name in conv] if part.layer == ALL_CONV else [part]
        )
    ]
    return spec.model_copy(update={"layers": layers})


def part_locations(spec: RenderSpec) -> list[tuple[RenderSpec, Loc]]:
    """Each single-layer part of ``spec`` and where its fields are in the body: ["body"] for a request of
    one layer, ["body", "layers", i] for the i-th of several."""
    if spec.layers is None:
        return [(spec, ["body"])]
    return [(part, ["body", "layers", index]) for index, part in enumerate(spec.parts())]


def fitted_to_start_image(
    spec: RenderSpec, size_asked: bool, start_image: StartImage | None, settings: Settings
) -> RenderSpec:
    """A request that starts from a photo and names no size keeps the photo's aspect ratio (the job
    record then carries the size rendered); an unknown photo is left to upload_errors."""
    if size_asked or start_image is None or start_image.size is None:
        return spec
    return spec.model_copy(update={"size": start_image_size(*start_image.size, settings.min_size, settings.max_size)})


def limit_errors(spec: RenderSpec, settings: Settings) -> list[FieldError]:
    assert spec.steps is not None  # a validated spec has its method's steps filled in
    errors = [*_layer_count_errors(spec, settings)]
    scope = "job" if spec.layers is None else "layer"
    for part, at in part_locations(spec):
        if pictures(part) > settings.max_filters:
            count = len(part.filters or [])
            asked = f"{count} filters" + (f" x diversity {spec.diversity}" if spec.diversity > 1 else "")
            msg = f"{asked} requested; at most {settings.max_filters} pictures per {scope}"
            errors.append(FieldError(loc=[*at, "filters"], msg=msg, type="too_many_filters"))
    if pictures(spec) > settings.max_pictures:
        msg = f"{pictures(spec)} pictures requested; at most {settings.max_pictures} per job (FILTERVIZ_MAX_PICTURES)"
        where = "filters" if spec.layers is None else "layers"
        errors.append(FieldError(loc=["body", where], msg=msg, type="too_many_pictures"))
    if spec.steps > settings.max_steps:
        msg = f"{spec.steps} steps requested; at most {settings.max_steps}"
        errors.append(FieldError(loc=["body", "steps"], msg=msg, type="too_many_steps"))
    if not all(settings.min_size <= side <= settings.max_size for side in spec.size):
        msg = size_message(spec.size, settings)
        errors.append(FieldError(loc=["body", "size"], msg=msg, type="size_out_of_range"))
    if spec.snapshots > spec.steps:
        msg = f"a frame every {spec.snapshots} steps of {spec.steps}: at most {spec.steps} (0: no animation)"
        errors.append(FieldError(loc=["body", "snapshots"], msg=msg, type="too_few_steps"))
    return errors


def _layer_count_errors(spec: RenderSpec, settings: Settings) -> list[FieldError]:
    if spec.layers is None or len(spec.layers) <= settings.max_layers:
        return []
    msg = f"{len(spec.layers)} layers requested; at most {settings.max_layers} per job (FILTERVIZ_MAX_LAYERS)"
    return [FieldError(loc=["body", "layers"], msg=msg, type="too_many_layers")]


def size_message(size: tuple[int, int], settings: Settings) -> str:
    return (
        f"size {size[0]}x{size[1]} is out of range: each side must be {settings.min_size} to {settings.max_size} pixels"
    )


def catalog_errors(spec: RenderSpec, models: dict[str, ModelEntry]) -> list[FieldError]:
    """Model, each layer (name or alias; several layers: each once) and its filter (or class) numbers.
    Channel counts do not depend on the size."""
    entry = models.get(spec.model)
    if entry is None:
        msg = f"unknown model {spec.model!r}; available: {list_valid(list(models))}"
        return [FieldError(loc=["body", "model"], msg=msg, type="unknown_model")]
    if not entry.available:
        return [unavailable_model_error(entry, ["body", "model"])]
    errors = []
    seen: dict[str, int] = {}  # catalog name -> the part that named it first
    for index, (part, at) in enumerate(part_locations(spec)):
        errors += _part_catalog_errors(part, entry, at)
        layer = find_layer(entry.layers, part.layer or "")
        if spec.layers is not None and layer is not None:
            if layer.name in seen:
                msg = f"layer {layer.name} is named twice (also layers[{seen[layer.name]}]); name each layer once"
                errors.append(FieldError(loc=[*at, "layer"], msg=msg, type="duplicate_layer"))
            seen.setdefault(layer.name, index)
    return errors


def _part_catalog_errors(spec: RenderSpec, entry: ModelEntry, at: Loc) -> list[FieldError]:
    """The layer and the filter (or class) numbers of a single-layer request, its fields under ``at``."""
    if spec.objective == "class":
        noun, count, owner = "class", entry.num_classes, f"{spec.model} has {entry.num_classes} classes"
    else:
        layer = find_layer(entry.layers, spec.layer or "")
        if layer is None:
            names = [layer.name for layer in entry.layers]
            msg = f"unknown layer {spec.layer!r} of {spec.model}; valid layers: {list_valid(names)}"
            return [FieldError(loc=[*at, "layer"], msg=msg, type="unknown_layer")]
        noun, count, owner = "filter", layer.filters, f"layer {layer.name} of {spec.model} has {layer.filters} filters"
    beyond = [str(f) for f in spec.filters or [] if f >= count]
    if beyond:
        msg = f"{noun} {list_valid(beyond, limit=5)} out of range: {owner} (0-{count - 1})"
        return [FieldError(loc=[*at, "filters"], msg=msg, type="filter_out_of_range")]
    return []


def unavailable_model_error(entry: ModelEntry, loc: Loc) -> FieldError:
    """A model the workers' start check found unusable: the deployment must fix its entry (and restart them)."""
    msg = f"model {entry.name} is unavailable: {entry.reason}"
    return FieldError(loc=loc, msg=msg, type="model_unavailable")


def cost_errors(spec: RenderSpec, settings: Settings, models: dict[str, ModelEntry]) -> list[FieldError]:
    """The job's work and memory, estimated from the catalog's per-layer costs (of each of its layers),
    against the per-job limits."""
    entry = models.get(spec.model)
    layers = [_costed_layer(part, entry) for part in spec.parts()] if entry is not None else []
    if entry is None or None in layers:
        return []  # catalog_errors says why
    known = [layer for layer in layers if layer is not None]
    catalog_size = (entry.default_size, entry.default_size)
    costs = [LayerCost(layer.flops, layer.activations, catalog_size) for layer in known]
    deepest = max(known, key=lambda layer: layer.flops).name
    through = deepest if len(known) == 1 else f"{len(known)} layers, the deepest {deepest},"
    return [*_work_errors(spec, through, costs, settings), *_memory_errors(spec, through, costs, settings)]


def _costed_layer(spec: RenderSpec, entry: ModelEntry) -> LayerEntry | None:
    """The layer the job climbs to; for objective 'class', the deepest (the logits cost about as much)."""
    if spec.objective == "class":
        return max(entry.layers, key=lambda layer: layer.flops, default=None)
    return find_layer(entry.layers, spec.layer or "")


def _work_errors(spec: RenderSpec, layer: str, costs: list[LayerCost], settings: Settings) -> list[FieldError]:
    tflop = job_work_flops(spec, costs) / 1e12
    if tflop <= settings.max_job_tflop:
        return []
    height, width = optimized_size(spec)
    msg = (
        f"this job is about {tflop:,.1f} TFLOP of work ({pictures(spec)} pictures x {spec.steps} steps x "
        f"{views(spec)} views through {layer} at {height}x{width}); at most {settings.max_job_tflop:g} TFLOP "
        "per job (FILTERVIZ_MAX_JOB_TFLOP): ask for fewer filters or steps, a smaller size or a shallower layer"
    )
    return [FieldError(loc=["body"], msg=msg, type="too_much_work")]


def _memory_errors(spec: RenderSpec, layer: str, costs: list[LayerCost], settings: Settings) -> list[FieldError]:
    needed_mb = memory_bytes(spec, costs) / 2**20
    if needed_mb <= settings.memory_budget_mb:
        return []
    frames = f"{frame_count(spec)} frames of each of " if spec.snapshots else ""
    msg = (
        f"this job needs about {needed_mb:,.0f} MB ({frames}{pictures(spec)} pictures at {spec.size[0]}x"
        f"{spec.size[1]}, and the activations of {layer}); at most {settings.memory_budget_mb} MB per job "
        "(FILTERVIZ_MEMORY_BUDGET_MB): ask for "
        + ("fewer frames (a larger snapshots), " if spec.snapshots else "")
        + "fewer filters or a smaller size"
    )
    field = "snapshots" if spec.snapshots else "filters" if spec.layers is None else "layers"
    return [FieldError(loc=["body", field], msg=msg, type="too_much_memory")]


def upload_errors(spec: RenderSpec, start_image: StartImage | None) -> list[FieldError]:
    """The start image must be stored and uploaded by this caller."""
    if not isinstance(spec.init, ImageInit) or (start_image is not None and start_image.usable):
        return []
    msg = f"no uploaded image {spec.init.image_id!r}; upload one with POST /v1/images"
    return [FieldError(loc=["body", "init", "image_id"], msg=msg, type="unknown_image")]


def webhook_errors(webhook: str | None, settings: Settings, refusal: ForbiddenTarget | None) -> list[FieldError]:
    if webhook is None:
        return []
    if settings.webhook_secret is None:
        msg = "this deployment sends no webhooks (it has no signing secret); leave out webhook"
        return [FieldError(loc=["body", "webhook"], msg=msg, type="webhooks_disabled")]
    return [] if refusal is None else [field_error(refusal)]
