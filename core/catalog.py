"""The model and layer catalog: what the workers know of each model, published for the API. Torch-free.

Each worker, at start, checks every model it serves and publishes one :class:`ModelEntry` per
model (layers at the model's default size; an unavailable model with its reason and no layers)
through core.store.catalog; layers at other sizes are computed on request.
"""

from pydantic import BaseModel, Field


class LayerEntry(BaseModel):
    name: str = Field(examples=["block4_conv1"])
    aliases: list[str] = Field(description="other names accepted for this layer, e.g. its module path")
    module_path: str
    type: str = Field(examples=["Conv2d"])
    output_shape: tuple[int, int, int] = Field(description="(channels, height, width) at the catalog's size")
    params: int
    filters: int = Field(description="how many filters (channels) can be visualized")
    flops: float = Field(
        description="forward FLOPs of one image up to this layer's output at the catalog's size (2 per "
        "multiply-add of convs and linears); the API estimates a job's work from it"
    )
    activations: int = Field(
        description="numbers one image's forward keeps for the backward up to this layer, at the catalog's size; "
        "the API estimates a job's memory from it"
    )


class ModelFacts(BaseModel):
    name: str
    architecture: str = Field(default="", examples=["torchvision:resnet18", "timm:vit_tiny_patch16_224"])
    description: str
    default_size: int
    weights_file: str
    available: bool = Field(
        default=True,
        description="false: the workers' start check found the model unusable (see reason); jobs for it are refused",
    )
    reason: str | None = Field(
        default=None,
        description="why the model is unavailable: an unknown architecture, a weight file missing, unreadable "
        "or not a state dict of the architecture (the first few names that differ)",
    )
    weights_available: bool = Field(description="whether the workers have the weight file")
    weights_identity: str | None = Field(
        default=None,
        description="the weight file's name, size and time (part of each picture's cache key); null: no file",
    )
    num_classes: int = Field(description="outputs of the model: the 'filters' of objective 'class'")


class ModelEntry(ModelFacts):
    layers: list[LayerEntry] = Field(description="layers at the model's default size")


class LayerAnswer(BaseModel):
    """A worker's answer for one model at one size: the layers, or why there are none."""

    layers: list[LayerEntry] = []
    error: str | None = None


def find_layer(layers: list[LayerEntry], name: str) -> LayerEntry | None:
    """The layer called ``name`` or having it as an alias."""
    return next((layer for layer in layers if layer.name == name or name in layer.aliases), None)


def size_key(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
