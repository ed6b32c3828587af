"""The l2 baseline of SEED's Table 4 ("other distillation strategies"): the squared l2
distance between the student's and the teacher's normalised embeddings of the same view,

    L = mean_i || z_S,i - z_T,i ||_2^2        (z L2-normalised: = mean_i (2 - 2 cos))

No queue, no temperature. Fang et al. (ICLR 2021) report it gives "a decent accuracy", below
SEED's similarity distribution. Pure torch; float32 (float64 if an input is) under autocast.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seed_solo.core.errors import ConfigError


def l2_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """L above.

    Args:
        student: (B, d) L2-normalised z_S; gradients flow into it.
        teacher: (B, d) L2-normalised z_T of the same views; detached.

    Returns:
        Scalar, the mean over the B samples of the squared distance (0 <= L <= 4).
    """
    if student.ndim != 2 or student.shape != teacher.shape:
        raise ConfigError(f"l2 needs student and teacher embeddings of one shape (B, d), got "
                          f"{tuple(student.shape)} and {tuple(teacher.shape)}.")
    dtype = torch.float64 if torch.float64 in (student.dtype, teacher.dtype) else torch.float32
    with torch.autocast(device_type=student.device.type, enabled=False):
        diff = student.to(dtype) - teacher.detach().to(dtype)
        return diff.pow(2).sum(dim=1).mean()
