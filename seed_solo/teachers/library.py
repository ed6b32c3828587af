"""Plain torchvision and timm models as teachers: the embedding is the pooled feature.

``torchvision:NAME`` / ``timm:NAME`` build the architecture with random weights (a baseline);
given a local state dict of that architecture (format ``torchvision:NAME``), the weights are
loaded with exact key checks (:mod:`seed_solo.nets.libraries`).
"""

from __future__ import annotations

from seed_solo.nets.libraries import PREFIXES, split_spec, timm_model, torchvision_model
from seed_solo.state_dict import StateDict
from seed_solo.teachers.heads import Embedder

__all__ = ["PREFIXES", "library_teacher"]


def library_teacher(spec: str, sd: StateDict | None = None):
    """``torchvision:NAME`` or ``timm:NAME`` -> (Embedder, F, preprocess)."""
    lib, name = split_spec(spec)
    if lib == "torchvision":
        model, dim = torchvision_model(name, sd)
        return Embedder(model), dim, None
    model, dim, pre = timm_model(name, sd)
    return Embedder(model), dim, pre
