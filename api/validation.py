"""Checks of a render request before anything is queued: limits, the published catalog, uploads, webhook."""

from api.problems import FieldError
from core.catalog import ModelEntry, find_layer
from core.errors import list_valid
from core.settings import Settings
from core.spec import ImageInit, RenderSpec
from core.storage import UPLOAD_SOURCE
from core.stores import Stores
from core.webhook_targets import ForbiddenTarget, resolve_target


def request_errors(
    spec: RenderSpec, settings: Settings, models: dict[str, ModelEntry], stores: Stores, caller: str | None
) -> list[FieldError]:
    """Every reason to refuse ``spec`` from ``caller``; ``models`` are the served models from the catalog."""
    return [*limit_errors(spec, settings), *catalog_errors(spec, models), *upload_errors(spec, stores, caller)]


def limit_errors(spec: RenderSpec, settings: Settings) -> list[FieldError]:
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


def upload_errors(spec: RenderSpec, stores: Stores, caller: str | None) -> list[FieldError]:
    """The start image must be stored and uploaded by this caller (others' images are as good as absent)."""
    if not isinstance(spec.init, ImageInit):
        return []
    image_id = spec.init.image_id
    if stores.upload_records.owned_by(image_id, caller) and stores.uploads.exists(image_id, UPLOAD_SOURCE):
        return []
    msg = f"no uploaded image {image_id!r}; upload one with POST /v1/images"
    return [FieldError(loc=["body", "init", "image_id"], msg=msg, type="unknown_image")]


def webhook_errors(webhook: str | None, settings: Settings) -> list[FieldError]:
    if webhook is None:
        return []
    if settings.webhook_secret is None:
        msg = "this deployment sends no webhooks (it has no signing secret); leave out webhook"
        return [FieldError(loc=["body", "webhook"], msg=msg, type="webhooks_disabled")]
    try:
        resolve_target(webhook, settings.webhook_allow_private)
    except ForbiddenTarget as exc:
        return [FieldError(loc=["body", "webhook"], msg=str(exc), type="forbidden_webhook")]
    return []
