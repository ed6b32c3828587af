"""Batch mixup, as LightlyTrain's distillation uses it: one lambda ~ U(0, 1) per batch, and
each image mixed with another image of the same batch (a random permutation),

    x~_i = lambda x_i + (1 - lambda) x_perm(i)

Teacher and student both see x~ (the teacher's targets are of the mixed images). Under DDP each
process mixes its own batch. Pure torch.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor


def draw_mixup(batch_size: int, generator: Optional[torch.Generator] = None
               ) -> Tuple[float, Tensor]:
    """(lambda, permutation) for a batch of ``batch_size``, from ``generator`` (default: torch's
    global CPU generator, which ``seed_everything`` seeds)."""
    lam = float(torch.rand((), generator=generator))
    return lam, torch.randperm(batch_size, generator=generator)


def mixup(images: Tensor, lam: float, perm: Tensor) -> Tensor:
    """(B, ...) images -> lambda images + (1 - lambda) images[perm]."""
    return lam * images + (1.0 - lam) * images[perm.to(images.device)]
