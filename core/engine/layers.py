"""The layer catalog: every layer of a model whose output is a feature map, with its shape.

Shapes come from a forward pass on the ``meta`` device: no weights, no memory, no arithmetic.
VGG layers carry the seed's Keras names (``block4_conv1``) with torchvision's module paths
(``features.17``) as aliases; as in Keras, a VGG conv layer is seen after its ReLU. Other
networks' layers are named by module path, with friendly aliases where an architecture has
well-known names (a ResNet's ``layer3`` is ``res4``) and those of the model's entry. A vision
transformer's layers are its patch embedding and, per block, the MLP's hidden units (after
the activation, where Ghiasi et al. 2023 found its features) and the block's output, each seen
as a grid of its patch tokens (core.engine.features.TokenGrid). Objective ``class`` looks at
the model's output, the ``logits`` pseudo-layer, which no listing shows.
"""

import math
import re
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

from core.engine.features import token_grid
from core.engine.models import build_architecture, model_cache, model_config, model_info
from core.errors import FilterOutOfRange, ModelUnavailable, SizeOutOfRange, UnknownLayer, list_valid
from core.spec import RenderSpec

_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
_KERAS_NAMED = ("torchvision:vgg16", "torchvision:vgg19")
_TOKEN_LAYER = re.compile(r"^(patch_embed\.proj|blocks\.\d+(\.mlp\.act)?)$")  # of a vision transformer
_RESNET_STAGES = {f"layer{n}": f"res{n + 1}" for n in range(1, 5)}  # He et al.'s conv2_x..conv5_x, as Caffe names them
LOGITS = "logits"


@dataclass(frozen=True)
class LayerInfo:
    name: str
    aliases: tuple[str, ...]
    module_path: str  # the module whose output is visualized ("" for the whole network)
    relu: bool  # the output is seen after a ReLU (VGG convs, as in Keras); the engine applies it
    type: str
    output_shape: tuple[int, int, int]  # (C, H, W) at the catalog's input size; H or W 0: too small
    params: int
    filters: int

    @property
    def is_conv(self) -> bool:
        return self.type == "Conv2d"

    def to_dict(self) -> dict:
        return asdict(self)


class _MetaShapes(TorchFunctionMode):
    """A flat linear's and a conv's outputs made as the empty meta tensors they are, from the arithmetic
    of their shapes: torch's meta addmm (and a broadcast add) import torch._dynamo, 0.8 s, and its meta
    conv's checks import sympy, 0.4 s of a render's start-up, for nothing but a shape. Anything else,
    or arguments that do not fit (which torch's own kernel then refuses), goes to torch."""

    def __torch_function__(self, func, _types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear and args[0].dim() == 2 and args[0].is_meta:
            x, weight = args[:2]
            return x.new_empty((len(x), weight.shape[0]))
        if func is F.conv2d and not kwargs and args[0].is_meta:
            shape = _conv2d_shape(*args)
            if shape is not None:
                return args[0].new_empty(shape)
        if func is F.max_pool2d and args[0].is_meta and not kwargs.pop("return_indices", False):
            shape = _pool2d_shape(*args, **kwargs)
            if shape is not None:
                return args[0].new_empty(shape)
        if func is F.adaptive_avg_pool2d and args[0].is_meta and args[0].dim() == 4 and not kwargs:
            x, size = args
            sides = (size, size) if isinstance(size, int) else size
            return x.new_empty((*x.shape[:2], *(s or x.shape[2 + i] for i, s in enumerate(sides))))
        return func(*args, **kwargs)


def _on_axis(value, axis: int) -> int:
    """One axis's value of a conv or pool argument given as one int for both axes or one per axis."""
    return value if isinstance(value, int) else value[axis]


def _conv2d_shape(x, weight, _bias=None, stride=1, padding=0, dilation=1, groups=1) -> tuple[int, ...] | None:
    """F.conv2d's output shape for a (N, C, H, W) input, as torch computes it; None where the arguments
    do not fit together (channels, an empty output) or come in a form not handled here."""
    if x.dim() != 4 or weight.dim() != 4 or x.shape[1] != weight.shape[1] * groups:
        return None
    if padding == "valid":
        padding = 0
    if isinstance(padding, str):
        return None  # "same": left to torch
    sides = []
    for axis, kernel in enumerate(weight.shape[2:]):
        step, pad, spread = (_on_axis(v, axis) for v in (stride, padding, dilation))
        side = (x.shape[2 + axis] + 2 * pad - spread * (kernel - 1) - 1) // step + 1
        if side < 1:
            return None
        sides.append(side)
    return (x.shape[0], weight.shape[0], *sides)


def _pool2d_shape(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> tuple[int, ...] | None:
    """F.max_pool2d's output shape for a (N, C, H, W) input, ceil mode included; None where it is empty."""
    if x.dim() != 4:
        return None
    sides = []
    for axis in range(2):
        kernel, pad, spread = (_on_axis(v, axis) for v in (kernel_size, padding, dilation))
        step = kernel if stride is None or stride == [] else _on_axis(stride, axis)  # F.max_pool2d: none = kernel
        size = x.shape[2 + axis]
        reach = size + 2 * pad - spread * (kernel - 1) - 1
        side = (-(-reach // step) if ceil_mode else reach // step) + 1
        if ceil_mode and (side - 1) * step >= size + pad:
            side -= 1  # the last window would start in the padding
        if side < 1:
            return None
        sides.append(side)
    return (*x.shape[:2], *sides)


def _meta_forward(network: nn.Module, size: tuple[int, int], handles: list[RemovableHandle]) -> None:
    """One image of ``size`` through ``network`` on the meta device, for what its hooks record; removes them."""
    try:
        with _MetaShapes():
            network(torch.zeros(1, 3, *size, device="meta"))
    except (RuntimeError, AssertionError):
        pass  # the input is too small (or a size the architecture refuses) for the deeper layers: they record nothing
    finally:
        for handle in handles:
            handle.remove()


def _trace_shapes(network: nn.Module, size: tuple[int, int]) -> dict[str, tuple[int, int, int]]:
    """(C, H, W) of every module's 4-D output (and a vision transformer's token outputs, as grids),
    in the order the outputs appear."""
    shapes: dict[str, tuple[int, int, int]] = {}
    grid = token_grid(network)

    def record(path: str):
        def hook(_module: nn.Module, _inputs: tuple, output: object) -> None:
            if grid is not None and grid.fits(output, size):
                output = grid(output, size)  # type: ignore[arg-type]
            if isinstance(output, torch.Tensor) and output.dim() == 4 and path not in shapes:
                channels, height, width = output.shape[1:]
                shapes[path] = (channels, height, width)

        return hook

    _meta_forward(network, size, [m.register_forward_hook(record(p)) for p, m in network.named_modules() if p])
    return shapes


def _param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _is_visualizable(module: nn.Module) -> bool:
    return isinstance(module, (nn.Conv2d, *_POOLS)) or any(True for _ in module.children())


def _channels(module: nn.Module, shape: tuple[int, int, int] | None) -> int:
    if shape is not None:
        return shape[0]
    return module.out_channels if isinstance(module, nn.Conv2d) else 0


def _keras_vgg_layers(network: nn.Module, shapes: dict, reference: dict) -> list[LayerInfo]:
    layers, block, conv = [], 1, 0
    features = network.get_submodule("features")
    assert isinstance(features, nn.Sequential), "torchvision's VGG: a Sequential of convs, ReLUs and pools"
    for index, module in enumerate(features):
        path = f"features.{index}"
        if isinstance(module, nn.Conv2d):
            conv += 1
            name = f"block{block}_conv{conv}"
        elif isinstance(module, nn.MaxPool2d):
            name = f"block{block}_pool"
        else:
            continue
        shape = shapes.get(path, (reference[path][0], 0, 0))
        relu = isinstance(module, nn.Conv2d)
        layers.append(
            LayerInfo(name, (path,), path, relu, type(module).__name__, shape, _param_count(module), shape[0])
        )
        if isinstance(module, nn.MaxPool2d):
            block, conv = block + 1, 0
    return layers


def _generic_layers(network: nn.Module, shapes: dict, reference: dict) -> list[LayerInfo]:
    modules = dict(network.named_modules())
    tokens = token_grid(network) is not None
    layers = []
    for path in reference:  # execution order, from a size at which every layer has a shape
        module = modules[path]
        if not (_TOKEN_LAYER.match(path) if tokens else _is_visualizable(module)):
            continue
        shape = shapes.get(path, (reference[path][0], 0, 0))
        aliases = _friendly_names(network, path)
        layers.append(
            LayerInfo(
                path, aliases, path, False, type(module).__name__, shape, _param_count(module), _channels(module, shape)
            )
        )
    return layers


def _friendly_names(network: nn.Module, path: str) -> tuple[str, ...]:
    """Well-known names of a layer: a ResNet's stages as res2..res5, a ViT's blocks as blockN (blockN_mlp)."""
    if hasattr(network, "layer4") and path in _RESNET_STAGES:
        return (_RESNET_STAGES[path],)
    block = re.match(r"^blocks\.(\d+)(\.mlp\.act)?$", path) if token_grid(network) is not None else None
    if block:
        return (f"block{block[1]}" + ("_mlp" if block[2] else ""),)
    return ()


def _with_entry_aliases(model: str, layers: list[LayerInfo]) -> list[LayerInfo]:
    """The entry's own aliases on the layers they name (by name or module path); one that names no layer,
    or another layer's name, makes the model unavailable."""
    aliases = model_config(model).aliases
    taken = {name for layer in layers for name in (layer.name, *layer.aliases)}
    for alias, target in aliases.items():
        named = [i for i, layer in enumerate(layers) if target in (layer.name, layer.module_path)]
        if not named:
            raise ModelUnavailable(f"model {model}: alias {alias!r} names no layer {target!r}")
        if alias in taken:
            raise ModelUnavailable(f"model {model}: alias {alias!r} is already a layer's name or alias")
        layer = layers[named[0]]
        layers[named[0]] = replace(layer, aliases=(*layer.aliases, alias))
        taken.add(alias)
    return layers


@model_cache(maxsize=64)
def _catalog(model: str, size: tuple[int, int]) -> tuple[LayerInfo, ...]:
    config = model_config(model)
    with torch.device("meta"):
        network = build_architecture(model).eval()
    default = (config.default_size, config.default_size)
    shapes = _trace_shapes(network, size)
    reference = shapes if size == default else _trace_shapes(network, default)
    build = _keras_vgg_layers if config.architecture in _KERAS_NAMED else _generic_layers
    return tuple(_with_entry_aliases(model, build(network, shapes, reference)))


def _multiply_adds(module: nn.Module, output: torch.Tensor) -> float:
    """Multiply-adds of one image through a conv or linear module, from its output's shape."""
    if isinstance(module, nn.Conv2d):
        kernel = module.kernel_size[0] * module.kernel_size[1]
        return output[0].numel() * module.in_channels // module.groups * kernel
    if isinstance(module, nn.Linear):
        return output[0].numel() * module.in_features
    return 0.0


@model_cache(maxsize=64)
def forward_flops(model: str, size: tuple[int, int]) -> dict[str, float]:
    """FLOPs (2 per multiply-add of convs and linears) one image costs up to each module's output.

    Keyed by module path, "" (the logits) included: what a forward pass stopped there costs.
    """
    with torch.device("meta"):
        network = build_architecture(model).eval()
    total = 0.0
    reached: dict[str, float] = {}

    def record(path: str):
        def hook(module: nn.Module, _inputs: tuple, output: object) -> None:
            nonlocal total
            if isinstance(output, torch.Tensor):
                total += 2 * _multiply_adds(module, output)
            reached.setdefault(path, total)

        return hook

    _meta_forward(network, size, [m.register_forward_hook(record(p)) for p, m in network.named_modules()])
    return reached


@model_cache(maxsize=64)
def _kept_floats(model: str, size: tuple[int, int]) -> dict[str, int]:
    """Per layer name: numbers one image's forward keeps for the backward, every layer output up to it."""
    kept, total = {}, 0
    for info in _catalog(model, size):
        total += math.prod(info.output_shape)
        kept[info.name] = total
    return kept


def activation_floats(model: str, size: tuple[int, int], layer: LayerInfo) -> int:
    """Numbers one image's forward keeps for the backward: every layer output up to ``layer``
    (the logits: up to the last layer)."""
    kept = _kept_floats(model, (size[0], size[1]))
    return kept.get(layer.name, max(kept.values(), default=0))


def layer_costs(model: str, size: tuple[int, int], layer: LayerInfo) -> tuple[float, int]:
    """(forward FLOPs, kept activation numbers) of one image up to ``layer`` at ``size``: what the
    catalog publishes so the API can estimate a job's work and memory without torch."""
    return forward_flops(model, (size[0], size[1])).get(layer.module_path, 0.0), activation_floats(model, size, layer)


def list_layers(model: str, size: int | tuple[int, int] = 224) -> list[LayerInfo]:
    """Every visualizable layer of ``model`` in forward order, with output shapes at ``size``."""
    if isinstance(size, int):
        size = (size, size)
    return list(_catalog(model, (size[0], size[1])))


def logits_layer(model: str) -> LayerInfo:
    """The model's output, for objective ``class``: one "filter" per class."""
    classes = model_info(model).num_classes
    return LayerInfo(LOGITS, (), "", False, "Linear", (classes, 1, 1), 0, classes)


def resolve_layer(model: str, layer: str, size: int | tuple[int, int] = 224) -> LayerInfo:
    """The catalog entry named ``layer`` (by name or alias), or UnknownLayer listing valid names."""
    if layer == LOGITS:
        return logits_layer(model)
    layers = list_layers(model, size)
    for info in layers:
        if layer == info.name or layer in info.aliases:
            return info
    raise UnknownLayer(f"model {model} has no layer {layer!r}; valid layers: {list_valid([i.name for i in layers])}")


def check_spec(spec: RenderSpec) -> LayerInfo:
    """The layer the spec names, once model, layer, filters and size are known to fit together."""
    model_info(spec.model)  # UnknownModel lists the valid ones
    layer = resolve_layer(spec.model, spec.layer or "", spec.size)
    out_of_range = [f for f in spec.filters or [] if f >= layer.filters]
    if out_of_range:
        kind = "classes" if spec.objective == "class" else "filters"
        raise FilterOutOfRange(
            f"layer {layer.name} of {spec.model} has {layer.filters} {kind} (0-{layer.filters - 1}); "
            f"out of range: {', '.join(map(str, out_of_range[:10]))}"
        )
    if 0 in layer.output_shape[1:]:
        raise SizeOutOfRange(
            f"at {spec.size[0]}x{spec.size[1]} pixels layer {layer.name} of {spec.model} has no pixels left; "
            f"use a larger size (the model's default is {model_info(spec.model).default_size})"
        )
    return layer
