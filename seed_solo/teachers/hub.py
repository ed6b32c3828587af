"""Plain torchvision and timm models as teachers: the embedding is the pooled feature.

``torchvision:NAME`` / ``timm:NAME`` build the architecture with random weights (a baseline);
given a local state dict of that architecture (format ``torchvision:NAME``), the weights are
loaded with exact key checks, the classifier's keys being the only ones dropped.
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple

import torch
from torch import Tensor, nn

from seed_solo.teachers.checkpoint import StateDict, load_exact
from seed_solo.teachers.heads import Embedder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: attribute names of classifiers in torchvision models, tried in this order
_TV_CLASSIFIERS = ("fc", "classifier", "heads", "head")


class Renormalize(nn.Module):
    """Maps images normalised with (mean_in, std_in) to images normalised with (mean_out, std_out).

    ``mean_out=0, std_out=1`` gives back [0, 1] pixels (SimCLR v1 teachers).
    """

    def __init__(self, mean_in: Sequence[float], std_in: Sequence[float],
                 mean_out: Sequence[float] = (0.0, 0.0, 0.0),
                 std_out: Sequence[float] = (1.0, 1.0, 1.0)) -> None:
        super().__init__()
        mi, si = torch.tensor(mean_in), torch.tensor(std_in)
        mo, so = torch.tensor(mean_out), torch.tensor(std_out)
        # y = ((x * si + mi) - mo) / so = x * scale + shift, per channel
        self.register_buffer("scale", (si / so).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", ((mi - mo) / so).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x) + self.shift.to(x)


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
        import difflib

        close = difflib.get_close_matches(name, known, n=3)
        raise ValueError(
            f"unknown torchvision model {name!r}; expected one of torchvision.models.list_models()"
            f"{' (closest: ' + ', '.join(close) + ')' if close else ''}."
        ) from err
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
        import difflib

        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise ValueError(f"unknown timm model {name!r}; see timm.list_models()"
                         f"{' (closest: ' + ', '.join(close) + ')' if close else ''}.")
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


def hub_teacher(spec: str, sd: StateDict | None = None):
    """``torchvision:NAME`` or ``timm:NAME`` -> (Embedder, F, preprocess)."""
    lib, _, name = spec.partition(":")
    if lib == "torchvision":
        model, dim = torchvision_model(name, sd)
        return Embedder(model), dim, None
    if lib == "timm":
        model, dim, pre = timm_model(name, sd)
        return Embedder(model), dim, pre
    raise ValueError(f"unknown model library {lib!r} in {spec!r}; expected torchvision:NAME or "
                     "timm:NAME.")
