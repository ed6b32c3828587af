"""ImageNet normalisation, and mapping images between normalisation conventions."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

#: the mean and std that solo-learn's pipelines (and most ImageNet models) normalise with
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Renormalize(nn.Module):
    """Maps images normalised with (mean_in, std_in) to images normalised with (mean_out, std_out).

    ``mean_out=0, std_out=1`` gives back [0, 1] pixels (SimCLR v1 teachers).
    """

    def __init__(self, mean_in: Sequence[float], std_in: Sequence[float],
                 mean_out: Sequence[float] = (0.0, 0.0, 0.0),
                 std_out: Sequence[float] = (1.0, 1.0, 1.0)) -> None:
        super().__init__()
        mi, si = torch.tensor(mean_in), torch.tensor(std_in)
        mo, so = torch.tensor(mean_out), torch.tensor(std_out)
        # y = ((x * si + mi) - mo) / so = x * scale + shift, per channel
        self.register_buffer("scale", (si / so).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", ((mi - mo) / so).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x) + self.shift.to(x)
