"""The engine (torch): model registry, layer catalog and the batched render loop."""

from core.engine.identity import PictureKeys, picture_keys
from core.engine.layers import LayerInfo, list_layers, resolve_layer
from core.engine.models import ModelInfo, list_models, load_model, model_info, weights_available
from core.engine.render import (
    FilterRender,
    RenderRequest,
    RenderResult,
    RequestResult,
    check_spec,
    render,
    render_batch,
)

__all__ = [
    "FilterRender",
    "LayerInfo",
    "ModelInfo",
    "PictureKeys",
    "RenderRequest",
    "RenderResult",
    "RequestResult",
    "check_spec",
    "list_layers",
    "list_models",
    "load_model",
    "model_info",
    "picture_keys",
    "render",
    "render_batch",
    "resolve_layer",
    "weights_available",
]
