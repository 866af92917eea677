"""The engine (torch): model registry, layer catalog and the batched render loop.

It imports only the torch-free domain (core.spec, core.pictures, core.errors, ...): no queue,
store or HTTP. Cache keys are computed torch-free (core.cache_key) from ``check_spec(spec).name``
and ``weights_identity(model)``.
"""

from core.engine.layers import LayerInfo, check_spec, list_layers, resolve_layer
from core.engine.models import ModelInfo, list_models, load_model, model_info, weights_available, weights_identity
from core.engine.render import (
    CurrentPicture,
    Progress,
    RenderRequest,
    RenderResult,
    RequestResult,
    render,
    render_batch,
)

__all__ = [
    "CurrentPicture",
    "LayerInfo",
    "ModelInfo",
    "Progress",
    "RenderRequest",
    "RenderResult",
    "RequestResult",
    "check_spec",
    "list_layers",
    "list_models",
    "load_model",
    "model_info",
    "render",
    "render_batch",
    "resolve_layer",
    "weights_available",
    "weights_identity",
]
