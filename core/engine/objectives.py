"""What it means for a picture to excite a layer: per-row objectives, higher is better.

Each takes a layer's output, (B, C, h, w) (or (B, C) for logits), and each row's target channel,
(B,), and returns (B,): one number per batch row, so rows never mix.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def target_maps(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, C, ...) -> (B, ...): each row's own channel."""
    return output[torch.arange(len(targets), device=output.device), targets]


def channel(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The filter's mean activation (the seed's objective); for logits, the class logit."""
    maps = target_maps(output, targets)
    return maps.reshape(len(maps), -1).float().mean(dim=1)


def neuron(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The filter at the center position of the feature map."""
    maps = target_maps(output, targets)
    if maps.dim() == 1:
        return maps.float()
    height, width = maps.shape[-2:]
    return maps[:, height // 2, width // 2].float()


def whole_layer(output: torch.Tensor, _targets: torch.Tensor) -> torch.Tensor:
    """DeepDream: the mean squared activation of every channel at once."""
    return output.float().pow(2).reshape(len(output), -1).mean(dim=1)


OBJECTIVES: dict[str, Objective] = {"channel": channel, "neuron": neuron, "layer": whole_layer, "class": channel}


def similarity_to_group(output: torch.Tensor, group: int) -> torch.Tensor:
    """(B,) each row's mean cosine similarity of style (Gram matrix) to the other rows of its group.

    Rows come in consecutive groups of ``group`` pictures of the same filter; subtracting this
    from the objective pushes them apart (Lucid's diversity objective).
    """
    batch, channels = output.shape[:2]
    flat = output.float().reshape(batch, channels, -1)
    grams = F.normalize((flat @ flat.transpose(1, 2)).reshape(batch, -1), dim=1)  # (B, C*C)
    grams = grams.view(batch // group, group, -1)
    similarity = grams @ grams.transpose(1, 2)  # (B/group, group, group)
    others = similarity.sum(dim=2) - similarity.diagonal(dim1=1, dim2=2)
    return (others / (group - 1)).reshape(batch)
