"""SimReg's objective (Navaneet et al., "SimReg: Regression as a Simple Yet Effective Tool for
Self-supervised Knowledge Distillation", BMVC 2021; github.com/UCDvision/simreg ``simreg.py``):
regression of the teacher's feature by the student's prediction head, on the normalised vectors,

    L = mean_i (2 - 2 cos(g(f_S(x_i)), f_T(x_i)))

where g is the deep prediction head (4 layers with BatchNorm, dropped after training:
:func:`seed_solo.nets.projector.student_head` ``simreg``) and teacher and student see the same
weakly augmented view. Both vectors are normalised here, as SimReg's forward does (its default,
not ``--mse_nonorm``). Pure torch; float32 (float64 if an input is) under autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seed_solo.core.errors import ConfigError


def simreg_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """L above.

    Args:
        prediction: (B, d) the student head's output g(f_S(x)), normalised or not.
        target: (B, d) the teacher's feature f_T(x) of the same view, normalised or not;
            detached.

    Returns:
        Scalar, the mean over the B samples (0 <= L <= 4).
    """
    if prediction.ndim != 2 or prediction.shape != target.shape:
        raise ConfigError(f"simreg needs prediction and target of one shape (B, d), got "
                          f"{tuple(prediction.shape)} and {tuple(target.shape)}.")
    dtype = torch.float64 if torch.float64 in (prediction.dtype, target.dtype) else torch.float32
    with torch.autocast(device_type=prediction.device.type, enabled=False):
        q = F.normalize(prediction.to(dtype), dim=1)
        t = F.normalize(target.detach().to(dtype), dim=1)
        return (2 - 2 * (q * t).sum(dim=1)).mean()
