"""Checks of a render request before anything is queued: limits, the catalog, the start image, the webhook.

Pure functions of the request, the settings and the :class:`SubmitFacts` the route looked up first
(api.deps.submit_facts: Redis, the upload directory, DNS), so that each check reads only its inputs.
"""

from dataclasses import dataclass

from api.problems import FieldError, field_error
from core.catalog import LayerEntry, ModelEntry, find_layer
from core.errors import ForbiddenTarget, list_valid
from core.job_cost import LayerCost, frame_count, memory_bytes, optimized_size, pictures, views, work_flops
from core.settings import Settings
from core.spec import ImageInit, RenderSpec, start_image_size


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
    errors = []
    pictures = len(spec.filters or []) * spec.diversity
    if pictures > settings.max_filters:
        asked = f"{len(spec.filters or [])} filters" + (f" x diversity {spec.diversity}" if spec.diversity > 1 else "")
        msg = f"{asked} requested; at most {settings.max_filters} pictures per job"
        errors.append(FieldError(loc=["body", "filters"], msg=msg, type="too_many_filters"))
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


def size_message(size: tuple[int, int], settings: Settings) -> str:
    return (
        f"size {size[0]}x{size[1]} is out of range: each side must be {settings.min_size} to {settings.max_size} pixels"
    )


def catalog_errors(spec: RenderSpec, models: dict[str, ModelEntry]) -> list[FieldError]:
    """Model, layer (name or alias) and filter (or class) numbers. Channel counts do not depend on the size."""
    entry = models.get(spec.model)
    if entry is None:
        msg = f"unknown model {spec.model!r}; available: {list_valid(list(models))}"
        return [FieldError(loc=["body", "model"], msg=msg, type="unknown_model")]
    if spec.objective == "class":
        noun, count, owner = "class", entry.num_classes, f"{spec.model} has {entry.num_classes} classes"
    else:
        layer = find_layer(entry.layers, spec.layer or "")
        if layer is None:
            names = [layer.name for layer in entry.layers]
            msg = f"unknown layer {spec.layer!r} of {spec.model}; valid layers: {list_valid(names)}"
            return [FieldError(loc=["body", "layer"], msg=msg, type="unknown_layer")]
        noun, count, owner = "filter", layer.filters, f"layer {layer.name} of {spec.model} has {layer.filters} filters"
    beyond = [str(f) for f in spec.filters or [] if f >= count]
    if beyond:
        msg = f"{noun} {list_valid(beyond, limit=5)} out of range: {owner} (0-{count - 1})"
        return [FieldError(loc=["body", "filters"], msg=msg, type="filter_out_of_range")]
    return []


def cost_errors(spec: RenderSpec, settings: Settings, models: dict[str, ModelEntry]) -> list[FieldError]:
    """The job's work and memory, estimated from the catalog's per-layer costs, against the per-job limits."""
    entry = models.get(spec.model)
    layer = _costed_layer(spec, entry) if entry is not None else None
    if entry is None or layer is None:
        return []  # catalog_errors says why
    cost = LayerCost(layer.flops, layer.activations, (entry.default_size, entry.default_size))
    return [*_work_errors(spec, layer.name, cost, settings), *_memory_errors(spec, layer.name, cost, settings)]


def _costed_layer(spec: RenderSpec, entry: ModelEntry) -> LayerEntry | None:
    """The layer the job climbs to; for objective 'class', the deepest (the logits cost about as much)."""
    if spec.objective == "class":
        return max(entry.layers, key=lambda layer: layer.flops, default=None)
    return find_layer(entry.layers, spec.layer or "")


def _work_errors(spec: RenderSpec, layer: str, cost: LayerCost, settings: Settings) -> list[FieldError]:
    tflop = work_flops(spec, cost) / 1e12
    if tflop <= settings.max_job_tflop:
        return []
    height, width = optimized_size(spec)
    msg = (
        f"this job is about {tflop:,.1f} TFLOP of work ({pictures(spec)} pictures x {spec.steps} steps x "
        f"{views(spec)} views through {layer} at {height}x{width}); at most {settings.max_job_tflop:g} TFLOP "
        "per job (FILTERVIZ_MAX_JOB_TFLOP): ask for fewer filters or steps, a smaller size or a shallower layer"
    )
    return [FieldError(loc=["body"], msg=msg, type="too_much_work")]


def _memory_errors(spec: RenderSpec, layer: str, cost: LayerCost, settings: Settings) -> list[FieldError]:
    needed_mb = memory_bytes(spec, cost) / 2**20
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
    field = "snapshots" if spec.snapshots else "filters"
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
