"""Dense distillation (the v2-style patch regression of LightlyTrain's ``distillationv2``):
the student's last feature map, through a per-location linear head, regresses the teacher's
patch tokens (ViT) or last feature map (CNN), location by location on one grid.

    S = to_grid(f_S(x), grid of T)          (B, C_S, h, w)   the student map, resized
    P = W S + b, applied at every location  (B, C_T, h, w)   the per-location linear head
    L = mean_{b, u} || P_bu/|P_bu| - T_bu/|T_bu| ||^2        (normalised MSE, = 2 - 2 cos)

or, with ``normalize=False``, LightlyTrain v2's own ``MSELoss``: the mean over every element of
``(P - T)^2``, unnormalised.

The grid: the teacher's grid is the target and is never resized (resizing it would invent or
average away the targets); the student's map is brought to it by :func:`to_grid`:

- a student grid larger than the teacher's (a CNN of stride 8 against a ViT of patch 14, or the
  CPU demo's 4 x 4 student against a 2 x 2 teacher map) is **area-averaged** (adaptive average
  pooling): every student location feeds the teacher location it covers, so all of them get a
  gradient. LightlyTrain resizes bilinearly instead, which for a ratio above 2 samples only some
  student locations and leaves the others without any gradient.
- a smaller student grid (a stride-32 CNN against a 16 x 16 ViT grid) is **upsampled
  bilinearly** (``align_corners=False``, as LightlyTrain): each teacher location is regressed
  by a blend of the (up to 4) nearest student locations, so the student cannot express detail
  finer than its own stride.
- mixed (larger in one direction, smaller in the other): area-averaged where larger, then
  bilinear where smaller.

Resizing before or after the head gives the same P (both resizes are linear with weights summing
to 1, the head is linear); resizing first is cheaper when the student's grid is larger.
Pure torch; float32 (float64 if an input is) under autocast.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from seed_solo.core.errors import ConfigError


def to_grid(maps: Tensor, size: Tuple[int, int]) -> Tensor:
    """(B, C, h_s, w_s) feature maps on the (h, w) grid ``size``: area-averaged along a side
    that is larger, bilinear (``align_corners=False``) along a side that is smaller."""
    h, w = int(size[0]), int(size[1])
    hs, ws = maps.shape[-2:]
    if (hs, ws) == (h, w):
        return maps
    if hs > h or ws > w:
        maps = F.adaptive_avg_pool2d(maps, (min(hs, h), min(ws, w)))
    if maps.shape[-2:] != (h, w):
        maps = F.interpolate(maps, size=(h, w), mode="bilinear", align_corners=False)
    return maps


def dense_loss(student: Tensor, teacher: Tensor, normalize: bool = True) -> Tensor:
    """L of the module docstring, for maps already on one grid.

    Args:
        student: (B, C, h, w) the projected student map P; gradients flow into it.
        teacher: (B, C, h, w) the teacher's patch tokens or feature map T; detached.
        normalize: per-location L2 normalisation and the mean over locations of the squared
            distance (0..4); False: the mean over elements of the squared difference.

    Returns:
        Scalar.
    """
    if student.ndim != 4 or student.shape != teacher.shape:
        raise ConfigError(
            f"dense distillation needs student and teacher maps of one shape (B, C, h, w), got "
            f"{tuple(student.shape)} and {tuple(teacher.shape)}; bring the student's map to the "
            "teacher's grid (to_grid) and project it to the teacher's channels."
        )
    dtype = torch.float64 if torch.float64 in (student.dtype, teacher.dtype) else torch.float32
    with torch.autocast(device_type=student.device.type, enabled=False):
        s, t = student.to(dtype), teacher.detach().to(dtype)
        if not normalize:
            return (s - t).pow(2).mean()
        s, t = F.normalize(s, dim=1), F.normalize(t, dim=1)
        return (s - t).pow(2).sum(dim=1).mean()
