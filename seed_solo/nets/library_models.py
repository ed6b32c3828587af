"""torchvision and timm models by name, without their classifier: (model, F) and weights.

Given a state dict of the architecture, the weights load with exact key checks, the
classifier's keys being the only ones dropped.
"""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

import timm
import torch
import torchvision
from torch import nn

from seed_solo.core.errors import ConfigError
from seed_solo.core.unknown_names import unknown_name
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD, Renormalize
from seed_solo.runs.checkpoint_files import StateDict, load_exact

#: attribute names of classifiers in torchvision models, tried in this order
_TV_CLASSIFIERS = ("fc", "classifier", "heads", "head")
#: ``timm:NAME`` / ``torchvision:NAME``: a model of either library, by name
PREFIXES = ("timm:", "torchvision:")


def split_spec(spec: str) -> Tuple[str, str]:
    """``"timm:NAME"`` -> ``("timm", "NAME")``; any other library is refused by name."""
    lib, _, name = str(spec).partition(":")
    if lib not in ("timm", "torchvision"):
        raise ConfigError(f"unknown model library {lib!r} in {spec!r}; expected timm:NAME or "
                          "torchvision:NAME.")
    return lib, name


def _known(lib: str) -> List[str]:
    if lib == "timm":
        return timm.list_models()
    return torchvision.models.list_models(torchvision.models)


def has_model(spec: str) -> bool:
    """True for a ``timm:NAME`` / ``torchvision:NAME`` whose model exists."""
    if not str(spec).startswith(PREFIXES):
        return False
    lib, name = split_spec(spec)
    if lib == "timm":
        return timm.is_model(name)
    return name in _known(lib)


def unknown_model(lib: str, name: str) -> str:
    """The message for a model ``name`` that library ``lib`` lacks, with the closest names."""
    where = "see timm.list_models()" if lib == "timm" else "see torchvision.models.list_models()"
    return unknown_name(f"{lib} model", name, _known(lib), where)


def _first_linear_in(module: nn.Module) -> int | None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            return m.in_features
    return None


def feature_width(model: nn.Module, size: int = 224) -> int:
    """F of ``model``, read off a dry forward of one ``size`` px image in eval mode (a model's
    ``num_features`` can be wrong: timm's MobileNetV3 reports 960 and outputs 1280)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    if out.ndim != 2:
        raise ConfigError(f"{type(model).__name__} outputs shape {tuple(out.shape)}, not (B, F) "
                          "pooled features; pick a model that pools (timm: num_classes=0).")
    return int(out.shape[1])


def timm_input_size(model: nn.Module, img_size: Any = None) -> int:
    """The side of the image a timm model expects: ``img_size`` if given, else its config's."""
    if img_size is not None:
        return int(img_size if isinstance(img_size, int) else img_size[-1])
    return int(getattr(model, "pretrained_cfg", {}).get("input_size", (3, 224, 224))[-1])


def classifier_attr(model: nn.Module) -> str | None:
    """The attribute holding a torchvision model's classifier (``fc``, ``classifier``...)."""
    return next((a for a in _TV_CLASSIFIERS if isinstance(getattr(model, a, None), nn.Module)),
                None)


def drop_classifier(model: nn.Module) -> int:
    """Replace a torchvision model's classifier (``fc``, ``classifier``...) by the identity, so
    that it outputs its pooled features; returns their width F.

    A classifier already replaced keeps its width from ``num_features`` (or a ResNet's
    ``inplanes``, solo-learn's convention).

    Raises:
        ValueError: the model has no classifier attribute.
    """
    attr = classifier_attr(model)
    if attr is None:
        raise ConfigError(f"{type(model).__name__} has no classifier attribute among "
                          f"{_TV_CLASSIFIERS}; load it as a plain module instead.")
    dim = _first_linear_in(getattr(model, attr))
    if dim is None:
        dim = getattr(model, "num_features", None) or model.inplanes
    setattr(model, attr, nn.Identity())
    return int(dim)


def torchvision_model(name: str, sd: StateDict | None = None,
                      **kwargs: Any) -> Tuple[nn.Module, int]:
    """torchvision ``name`` without its classifier: (model, F), weights from ``sd`` if given."""
    try:
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    except ValueError as err:
        raise ConfigError(unknown_model("torchvision", name)) from err
    attr = classifier_attr(model)
    dim = drop_classifier(model)
    if sd is not None:
        sd = {k: v for k, v in sd.items() if not k.startswith(attr + ".")}
        load_exact(model, sd, f"torchvision:{name}", f"torchvision:{name}")
    return model, int(dim)


def timm_model(name: str, sd: StateDict | None = None,
               **kwargs: Any) -> Tuple[nn.Module, int, Callable]:
    """timm ``name`` with ``num_classes=0``: (model, F, preprocess), weights from ``sd`` if given.

    ``preprocess`` re-normalises ImageNet-normalised inputs to the model's own mean/std when
    they differ (e.g. 0.5/0.5 for some timm weights); None when they agree.
    """
    if not timm.is_model(name):
        raise ConfigError(unknown_model("timm", name))
    model = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
    dim = getattr(model, "head_hidden_size", None) or model.num_features
    if sd is not None:
        cls = model.pretrained_cfg.get("classifier") or "head"
        prefixes = tuple(c + "." for c in ([cls] if isinstance(cls, str) else cls))
        sd = {k: v for k, v in sd.items() if not k.startswith(prefixes)}
        load_exact(model, sd, f"timm:{name}", f"timm:{name}")
    mean = tuple(model.pretrained_cfg.get("mean", IMAGENET_MEAN))
    std = tuple(model.pretrained_cfg.get("std", IMAGENET_STD))
    pre = None
    if not (torch.allclose(torch.tensor(mean), torch.tensor(IMAGENET_MEAN))
            and torch.allclose(torch.tensor(std), torch.tensor(IMAGENET_STD))):
        pre = Renormalize(IMAGENET_MEAN, IMAGENET_STD, mean, std)
    return model, int(dim), pre
