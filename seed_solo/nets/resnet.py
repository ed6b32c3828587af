"""ResNets of any depth and width with torchvision's key layout, sized from a state dict.

MoCo, SimCLR (converted), DINO, Barlow Twins and VICReg release torchvision ResNets; SwAV's
RN50w2/w4/w5 widen every stage, the stem included (SwAV's ``resnet50.py`` ``widen``: stem width
64 * widen; its ``ConstantPad2d(1)`` before a padding-2 stem convolution equals torchvision's
padding 3). One class covers them all: the stem width, the planes of the first stage (doubled
per stage), the bottleneck width per group, the block type and the blocks per stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Tuple

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

from seed_solo.core.errors import CheckpointError


@dataclass(frozen=True)
class ResNetSpec:
    """Shape of a ResNet: ``bottleneck`` blocks or basic ones, ``layers`` blocks per stage,
    ``stem`` channels of the first convolution, ``planes`` of stage 1, ``base_width`` (64 for
    ResNet-50, 128 for torchvision's wide_resnet50_2)."""

    bottleneck: bool = True
    layers: Tuple[int, int, int, int] = (3, 4, 6, 3)
    stem: int = 64
    planes: int = 64
    base_width: int = 64

    @property
    def num_features(self) -> int:
        return self.planes * 8 * (4 if self.bottleneck else 1)


#: named architectures of the zoo (SwAV's wide ones: widen = 2, 4, 5)
ARCHS = {
    "resnet18": ResNetSpec(False, (2, 2, 2, 2)),
    "resnet34": ResNetSpec(False, (3, 4, 6, 3)),
    "resnet50": ResNetSpec(True, (3, 4, 6, 3)),
    "resnet101": ResNetSpec(True, (3, 4, 23, 3)),
    "resnet152": ResNetSpec(True, (3, 8, 36, 3)),
    "resnet50w2": ResNetSpec(True, (3, 4, 6, 3), 128, 128, 64),
    "resnet50w4": ResNetSpec(True, (3, 4, 6, 3), 256, 256, 64),
    "resnet50w5": ResNetSpec(True, (3, 4, 6, 3), 320, 320, 64),
}


class ResNet(nn.Module):
    """(B, 3, H, W) -> (B, F) average-pooled features; keys as torchvision's ResNet minus ``fc``."""

    def __init__(self, spec: ResNetSpec) -> None:
        super().__init__()
        self.spec = spec
        block = Bottleneck if spec.bottleneck else BasicBlock
        self.base_width = spec.base_width
        self.inplanes = spec.stem
        self.conv1 = nn.Conv2d(3, spec.stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(spec.stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, spec.planes, spec.layers[0], 1)
        self.layer2 = self._make_layer(block, spec.planes * 2, spec.layers[1], 2)
        self.layer3 = self._make_layer(block, spec.planes * 4, spec.layers[2], 2)
        self.layer4 = self._make_layer(block, spec.planes * 8, spec.layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = spec.num_features

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        kw = {"base_width": self.base_width} if block is Bottleneck else {}
        layers: List[nn.Module] = [block(self.inplanes, planes, stride, downsample, **kw)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **kw) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def spec_from_state_dict(sd: Mapping[str, Tensor]) -> ResNetSpec:
    """Read a ResNet's shape off torchvision-style keys (``conv1.weight``, ``layerN.i.*``).

    Raises:
        ValueError: the keys are not a ResNet's.
    """
    if "conv1.weight" not in sd or "layer1.0.conv1.weight" not in sd:
        raise CheckpointError(
            "the backbone keys are not a torchvision-style ResNet's (no conv1.weight / "
            "layer1.0.conv1.weight); pass the checkpoint's format explicitly."
        )
    bottleneck = "layer1.0.conv3.weight" in sd
    layers = tuple(
        len({k.split(".")[1] for k in sd if k.startswith(f"layer{i}.")}) for i in range(1, 5)
    )
    stem = sd["conv1.weight"].shape[0]
    if bottleneck:
        planes = sd["layer1.0.conv3.weight"].shape[0] // 4
        base_width = sd["layer1.0.conv1.weight"].shape[0] * 64 // planes
    else:
        planes, base_width = sd["layer1.0.conv2.weight"].shape[0], 64
    return ResNetSpec(bottleneck, layers, stem, planes, base_width)  # type: ignore[arg-type]


def arch_name(spec: ResNetSpec) -> str:
    """The zoo name of ``spec`` (``resnet50w2``...) or a description of it."""
    for name, s in ARCHS.items():
        if s == spec:
            return name
    kind = "bottleneck" if spec.bottleneck else "basic"
    return f"resnet({kind}, layers={list(spec.layers)}, stem={spec.stem}, planes={spec.planes})"
