"""torchvision and timm models by name, without their classifier: (model, F) and weights.

Given a state dict of the architecture, the weights load with exact key checks, the
classifier's keys being the only ones dropped.
"""

from __future__ import annotations

from typing import Callable, Tuple

import torch
from torch import nn

from seed_solo.names import unknown_name
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD, Renormalize
from seed_solo.state_dict import StateDict, load_exact

#: attribute names of classifiers in torchvision models, tried in this order
_TV_CLASSIFIERS = ("fc", "classifier", "heads", "head")


def _first_linear_in(module: nn.Module) -> int | None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            return m.in_features
    return None


def torchvision_model(name: str, sd: StateDict | None = None) -> Tuple[nn.Module, int]:
    """torchvision ``name`` without its classifier: (model, F), weights from ``sd`` if given."""
    import torchvision

    try:
        model = torchvision.models.get_model(name, weights=None)
    except ValueError as err:
        known = torchvision.models.list_models(torchvision.models)
        raise ValueError(unknown_name("torchvision model", name, known,
                                      "see torchvision.models.list_models()")) from err
    attr = next((a for a in _TV_CLASSIFIERS if isinstance(getattr(model, a, None), nn.Module)),
                None)
    if attr is None:
        raise ValueError(f"torchvision model {name!r} has no classifier attribute among "
                         f"{_TV_CLASSIFIERS}; load it as a plain module instead.")
    dim = _first_linear_in(getattr(model, attr))
    setattr(model, attr, nn.Identity())
    if sd is not None:
        sd = {k: v for k, v in sd.items() if not k.startswith(attr + ".")}
        load_exact(model, sd, f"torchvision:{name}", f"torchvision:{name}")
    return model, int(dim)


def timm_model(name: str, sd: StateDict | None = None) -> Tuple[nn.Module, int, Callable]:
    """timm ``name`` with ``num_classes=0``: (model, F, preprocess), weights from ``sd`` if given.

    ``preprocess`` re-normalises ImageNet-normalised inputs to the model's own mean/std when
    they differ (e.g. 0.5/0.5 for some timm weights); None when they agree.
    """
    import timm

    if not timm.is_model(name):
        raise ValueError(unknown_name("timm model", name, timm.list_models(),
                                      "see timm.list_models()"))
    model = timm.create_model(name, pretrained=False, num_classes=0)
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
