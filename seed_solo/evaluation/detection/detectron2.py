"""A ResNet student in the file detectron2 loads for its ResNet backbones.

The layout is the pickle MoCo's ``detection/convert-pretrain-to-detectron2.py`` writes
(facebookresearch/moco), which MoCo's and SEED's detection configs load as ``MODEL.WEIGHTS``:
``{"model": {detectron2 name: numpy array}, "__author__": ..., "matching_heuristics": True}``.
The names follow MoCo's rule: outside ``layerN`` a key gets the prefix ``stem.``; ``layerN``
becomes ``res{N+1}``; ``bnK`` becomes ``convK.norm``; ``downsample.0`` becomes ``shortcut`` and
``downsample.1`` ``shortcut.norm``. Every tensor of the student's state dict is written,
BatchNorm's ``num_batches_tracked`` included (detectron2 skips what it does not use).

Supported students: torchvision's ResNets with the 7x7 ImageNet stem (``resnet18``,
``resnet34``, ``resnet50``, ``resnet101``, ``resnet152``, ``torchvision:resnet*``,
``torchvision:wide_resnet*``, ``torchvision:resnext*``). detectron2's ResNet has no stage for
a MobileNet, an EfficientNet, ``tiny_resnet10``, solo-learn's 3x3 CIFAR stem or a timm model:
those are refused (``--to onnx``, ``--to timm`` take them).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Dict, Mapping

import numpy as np
import torchvision
from torch import Tensor, nn

from seed_solo.core.errors import ConfigError

AUTHOR = "seed-solo"
_LAYER = re.compile(r"layer(\d)")
_BN = re.compile(r"bn(\d)")


def detectron2_name(key: str) -> str:
    """A torchvision ResNet state-dict key as detectron2 names it (MoCo's rule)."""
    if "layer" not in key:
        key = "stem." + key
    key = _LAYER.sub(lambda m: f"res{int(m.group(1)) + 1}", key)
    key = _BN.sub(lambda m: f"conv{m.group(1)}.norm", key)
    return key.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")


def check_supported(backbone: nn.Module, name: str) -> None:
    """Refuse a student detectron2's ResNet cannot hold, saying what to do instead."""
    if not isinstance(backbone, torchvision.models.ResNet):
        raise ConfigError(f"the student {name!r} is not a ResNet; detectron2's built-in "
                          "backbones are ResNets: export it --to onnx (or --to timm / "
                          "--to torchvision where it is one of theirs).")
    if tuple(backbone.conv1.kernel_size) != (7, 7):
        raise ConfigError(f"the student {name!r} has solo-learn's 3x3 CIFAR stem, which "
                          "detectron2's ResNet stem (7x7) cannot hold; export it --to onnx.")


def to_detectron2(state: Mapping[str, Tensor]) -> Dict[str, object]:
    """The pickle's content for a ResNet ``state`` dict (its fc left out beforehand)."""
    model = {detectron2_name(k): v.detach().cpu().numpy() for k, v in state.items()}
    return {"model": model, "__author__": AUTHOR, "matching_heuristics": True}


def write_detectron2(state: Mapping[str, Tensor], out: Path) -> float:
    """Write the pickle to ``out`` (already a temporary path), read it back and compare every
    tensor with ``state``; returns the largest |difference| (0 for a faithful file).

    Raises:
        ValueError: a tensor is missing, renamed twice or changed in the file read back.
    """
    payload = to_detectron2(state)
    if len(payload["model"]) != len(state):
        raise ValueError("two keys of the student map to one detectron2 name; report this "
                         "with the run's args.json.")
    with open(out, "wb") as f:
        pickle.dump(payload, f)
    with open(out, "rb") as f:
        back = pickle.load(f)["model"]
    worst = 0.0
    for key, value in state.items():
        got = back.get(detectron2_name(key))
        expected = value.detach().cpu().numpy()
        if got is None or got.shape != expected.shape or got.dtype != expected.dtype:
            raise ValueError(f"{key} did not come back from the detectron2 file as written; "
                             "nothing was kept.")
        worst = max(worst, float(np.abs(got.astype(np.float64) - expected).max(initial=0.0)))
    return worst


def detectron2_config(name: str, backbone: nn.Module) -> str:
    """The detectron2 settings that fit the exported weights (as MoCo's ``*_moco.yaml``)."""
    depth = sum(len(getattr(backbone, f"layer{i}")) for i in range(1, 5))
    depth = {8: 18, 16: 34 if _basic(backbone) else 50, 33: 101, 50: 152}.get(depth, depth)
    extra = " MODEL.RESNETS.RES2_OUT_CHANNELS 64" if _basic(backbone) else ""
    if backbone.groups != 1 or backbone.base_width != 64:  # ResNeXt, wide ResNets
        extra += (f" MODEL.RESNETS.NUM_GROUPS {backbone.groups}"
                  f" MODEL.RESNETS.WIDTH_PER_GROUP {backbone.base_width}")
    return (f"MODEL.WEIGHTS PATH MODEL.RESNETS.DEPTH {depth}{extra} "
            "MODEL.RESNETS.STRIDE_IN_1X1 False MODEL.PIXEL_MEAN [123.675,116.280,103.530] "
            "MODEL.PIXEL_STD [58.395,57.120,57.375] INPUT.FORMAT RGB")


def _basic(backbone: nn.Module) -> bool:
    return isinstance(backbone.layer1[0], torchvision.models.resnet.BasicBlock)
