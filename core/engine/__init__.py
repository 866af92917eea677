"""The engine (torch): model registry, layer catalog and the batched render loop."""

from core.engine.layers import LayerInfo, list_layers, resolve_layer
from core.engine.models import ModelInfo, list_models, load_model, model_info, weights_available
from core.engine.render import FilterRender, RenderResult, check_spec, render

__all__ = [
    "FilterRender",
    "LayerInfo",
    "ModelInfo",
    "RenderResult",
    "check_spec",
    "list_layers",
    "list_models",
    "load_model",
    "model_info",
    "render",
    "resolve_layer",
    "weights_available",
]
