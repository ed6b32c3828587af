"""DINOv3's ConvNeXt teachers (Meta's ConvNeXt keys), built with timm's ``ConvNeXt``.

The widths and depths are read off the checkpoint; timm's ``checkpoint_filter_fn`` renames and
reshapes the keys, one at a time, so that a key of the wrong shape keeps its place for the
exact load to name it. The embedding is the LayerNorm of the global average (the original's
CLS output).
"""

from __future__ import annotations

import re
from typing import Tuple

from timm.models.convnext import ConvNeXt, checkpoint_filter_fn
from torch import Tensor, nn

from seed_solo.core.errors import CheckpointError
from seed_solo.runs.checkpoint_files import StateDict


def convnext(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    dims, depths = [], []
    for i in range(4):
        key = f"downsample_layers.{i}.{0 if i == 0 else 1}.weight"
        if key not in sd:
            raise CheckpointError(f"convnext checkpoint lacks {key!r}; check teacher_format (keys "
                                  f"start {', '.join(sorted(sd)[:4])}).")
        dims.append(int(sd[key].shape[0]))
        depths.append(1 + max((int(m.group(1)) for k in sd
                               if (m := re.match(rf"stages\.{i}\.(\d+)\.", k))), default=-1))
    # the class itself, not a registry name: solo-learn re-registers timm's convnext_* names
    model = ConvNeXt(depths=tuple(depths), dims=tuple(dims), num_classes=0).eval()
    out: StateDict = {}
    for key, value in sd.items():  # one key at a time: a wrong shape stays, for load_exact
        try:
            out.update(checkpoint_filter_fn({key: value}, model))
        except (RuntimeError, KeyError):  # timm's reshape to the model's shape failed
            out[convnext_name(key)] = value
    return model, out, {}


def convnext_name(key: str) -> str:
    """timm's name of a Meta ConvNeXt key (what timm's filter renames, without reshaping)."""
    key = key.replace("downsample_layers.0.", "stem.")
    key = re.sub(r"stages\.(\d+)\.(\d+)", r"stages.\1.blocks.\2", key)
    key = re.sub(r"downsample_layers\.(\d+)\.(\d+)", r"stages.\1.downsample.\2", key)
    key = key.replace("dwconv", "conv_dw").replace("pwconv", "mlp.fc")
    return "head.norm." + key[len("norm."):] if key.startswith("norm.") else key


class PooledEmbedder(nn.Module):
    """(B, 3, H, W) -> a timm CNN with ``num_classes=0`` -> its pooled, normed (B, F) features
    (DINOv3 ConvNeXt: the LayerNorm of the global average, the original's CLS output)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone(x)
