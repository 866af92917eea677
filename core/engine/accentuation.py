"""Feature accentuation (Hamblin et al. 2024, faccent): the photo, with the filter's pattern grown into it.

The picture starts as the photo, in a phase-only Fourier parameterization whose magnitude is the
photo's own (core.engine.parameterizations.PhaseImage.from_pixels), and climbs the objective
while a regularizer keeps the photo's features: ``FeatureDistance``, the squared distance of the
picture's features from the photo's at each row's own layer, under the same random warp, relative
to the photo's (its row's own channel left out, as faccent's orthogonal variant does: that one is
meant to change). Its weight is balanced automatically (``balanced_gradient``).
"""

import torch
import torch.nn.functional as F
from torch import nn

from core.engine.batch_plan import Row
from core.engine.features import FeatureExtractor
from core.engine.objectives import layer_runs

# The regularizer's gradient, per picture and step, is scaled to BALANCE times the objective's (in
# norm over the parameters): at 1 or more it wins wherever the two pull straight against each other,
# and the picture hardly moves; below, the objective leads and the distance steers it away from the
# photo's other features. Measured on the cat (blocks.3, filters 0 and 5, 64x96, 24 steps of 0.2):
# balance 1 raised the filters from -2.7/-0.3 to 4.6/6.3 at SSIM 0.92 to the photo, 0.5 to 10.1/12.0
# at SSIM 0.80, the cat plainly a cat with the filters' texture drawn over its fur.
BALANCE = 0.5


class FeatureDistance:
    """``distance(views, photo_views)`` -> (B,): each row's relative feature distance, averaged over views.

    ``views`` and ``photo_views`` are (views * B, 3, H, W), view after view, warped alike.
    """

    def __init__(self, rows: list[Row], model: nn.Sequential, device: torch.device, own_channel_free: bool) -> None:
        self._rows = rows
        self._model, self._device = model, device
        self._own_channel_free = own_channel_free
        self._runs = layer_runs(rows)
        self._channels = torch.tensor([row.filter for row in rows], device=device)
        self._features = FeatureExtractor(model, [layer.module_path for layer, _ in self._runs])

    def keep(self, rows: torch.Tensor) -> "FeatureDistance":
        return FeatureDistance(
            [self._rows[i] for i in rows.tolist()], self._model, self._device, self._own_channel_free
        )

    def __call__(self, views: torch.Tensor, photo_views: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            anchors = self._features(photo_views)
        outputs = self._features(views)
        batch = len(self._channels)
        per_view = []
        for first in range(0, len(views), batch):
            distances = []
            for (layer, rows), output, anchor in zip(self._runs, outputs, anchors, strict=True):
                seen = output[first : first + batch][rows].float()
                kept = anchor[first : first + batch][rows].float()
                if layer.relu:
                    seen, kept = F.relu(seen), F.relu(kept)
                difference = (seen - kept).pow(2)
                if self._own_channel_free and difference.dim() > 1:
                    own = F.one_hot(self._channels[rows], difference.shape[1]).to(difference.dtype)
                    difference = difference * (1 - own.view(*own.shape, *[1] * (difference.dim() - 2)))
                size = kept.pow(2).reshape(len(kept), -1).sum(dim=1)
                distances.append(difference.reshape(len(kept), -1).sum(dim=1) / size.clamp(min=1e-12))
            per_view.append(torch.cat(distances))
        return torch.stack(per_view).mean(dim=0)


def balanced_gradient(climb: torch.Tensor, keep: torch.Tensor, balance: float = BALANCE) -> torch.Tensor:
    """The descent direction of ``-objective + weight * distance``, the weight chosen per row so that
    the distance's gradient ``keep`` has ``balance`` times the norm of the objective's ``climb``.

    Both are gradients of quantities to minimize, (B, ...) over the parameters. Before the picture
    has moved, ``keep`` is zero and the objective alone moves it.
    """
    dims = tuple(range(1, climb.dim()))
    climb_norm = climb.pow(2).sum(dim=dims, keepdim=True).sqrt()
    keep_norm = keep.pow(2).sum(dim=dims, keepdim=True).sqrt()
    return climb + balance * climb_norm * keep / keep_norm.clamp(min=1e-20)
