"""torchvision's VGGs and AlexNet, built without importing torchvision.

Importing torchvision imports torch._dynamo (through torchvision.ops), about a second of every render's
start, for networks that are a few Sequentials. These are the same networks as torchvision 0.29's
models/vgg.py and alexnet.py: the same module tree, parameter names and shapes, random init (drawn from
torch's generator in the same order) and forward; tests/engine/test_plain_cnns.py checks each against
torchvision itself. Every other torchvision architecture comes from torchvision.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

MAX_POOL = "M"
# torchvision's cfgs "A", "B", "D", "E": output channels of each 3x3 conv, MAX_POOL for a 2x2 max-pool
VGG_LAYERS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(
        self, features: nn.Sequential, num_classes: int = 1000, init_weights: bool = True, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        # Nothing is drawn on the meta device (the engine's builds), where normal_ would import torch._dynamo.
        if init_weights and not features[0].weight.is_meta:
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    if module.bias is not None:
                        nn.init.constant_(module.bias, 0)
                elif isinstance(module, nn.BatchNorm2d):
                    nn.init.constant_(module.weight, 1)
                    nn.init.constant_(module.bias, 0)
                elif isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, 0, 0.01)
                    nn.init.constant_(module.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def vgg_features(layers: list[int | str], batch_norm: bool) -> nn.Sequential:
    modules: list[nn.Module] = []
    in_channels = 3
    for layer in layers:
        if layer == MAX_POOL:
            modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        assert isinstance(layer, int)
        modules.append(nn.Conv2d(in_channels, layer, kernel_size=3, padding=1))
        if batch_norm:
            modules.append(nn.BatchNorm2d(layer))
        modules.append(nn.ReLU(inplace=True))
        in_channels = layer
    return nn.Sequential(*modules)


def vgg(depth: int, batch_norm: bool, **options: Any) -> VGG:
    """torchvision's ``vgg{depth}`` (``_bn`` with ``batch_norm``) with ``weights=None``."""
    return VGG(vgg_features(VGG_LAYERS[depth], batch_norm), **options)


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


# torchvision's builder name -> a builder taking the same keyword arguments but ``weights`` (always None here)
TORCHVISION_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    **{f"vgg{depth}": partial(vgg, depth, False) for depth in VGG_LAYERS},
    **{f"vgg{depth}_bn": partial(vgg, depth, True) for depth in VGG_LAYERS},
    "alexnet": AlexNet,
}
