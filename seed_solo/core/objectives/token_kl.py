"""The token-similarity KL, the local term of LightlyTrain's ``distillationv3``: within each
image, every location's similarity distribution over the image's locations, student vs teacher.

For image b with teacher tokens t_b1..t_bN and student tokens s_b1..s_bN on one grid (the
student's map brought to the teacher's grid and projected per location, as for
:mod:`dense <seed_solo.core.objectives.dense>`), all L2-normalised:

    q_T,bm = softmax_n(t_bm . t_bn / tau)       q_S,bm = softmax_n(s_bm . s_bn / tau)
    L      = (1 / (B N)) sum_{b, m} KL(q_T,bm || q_S,bm)

The row m includes the location itself (n = m), as LightlyTrain's does. The student's and the
teacher's channel counts may differ: only each side's own similarities are compared.
LightlyTrain v3 adds it to its global queue KL with weight 1 and tau = 0.07
(``loss_local_weight``, ``temperature_local``). Pure torch; float32 (float64 if an input is)
under autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seed_solo.core.errors import ConfigError
from seed_solo.core.objectives.seed import ieee_float32_matmul


def token_kl(student: Tensor, teacher: Tensor, tau: float = 0.07) -> Tensor:
    """L above.

    Args:
        student: (B, C_S, h, w) student map on the teacher's grid; gradients flow into it.
        teacher: (B, C_T, h, w) teacher patch tokens or feature map; detached.
        tau: the temperature of both distributions.

    Returns:
        Scalar, the mean over the B x N rows (N = h w).
    """
    if student.ndim != 4 or teacher.ndim != 4 or student.shape[0] != teacher.shape[0] \
            or student.shape[-2:] != teacher.shape[-2:]:
        raise ConfigError(
            f"token similarity needs student and teacher maps on one grid, (B, C, h, w) each, "
            f"got {tuple(student.shape)} and {tuple(teacher.shape)}; bring the student's map "
            "to the teacher's grid first (dense.to_grid)."
        )
    if not tau > 0:
        raise ConfigError(f"the token temperature must be positive, got {tau}.")
    dtype = torch.float64 if torch.float64 in (student.dtype, teacher.dtype) else torch.float32
    with torch.autocast(device_type=student.device.type, enabled=False), ieee_float32_matmul():
        s = F.normalize(student.to(dtype).flatten(2), dim=1)  # B x C_S x N
        t = F.normalize(teacher.detach().to(dtype).flatten(2), dim=1)  # B x C_T x N
        with torch.no_grad():
            log_q_t = F.log_softmax(t.transpose(1, 2) @ t / tau, dim=2)  # B x N x N
        log_q_s = F.log_softmax(s.transpose(1, 2) @ s / tau, dim=2)
        return (log_q_t.exp() * (log_q_t - log_q_s)).sum(dim=2).mean()
