"""seed-solo's students in solo-learn's backbone table, so that solo-learn builds them by name.

solo-learn builds a method's backbone from ``BaseMethod._BACKBONES[cfg.backbone.name](method,
**kwargs)``, a plain dict: adding to it needs no edit of solo-learn. Evaluating a run of a
solo-learn method (kNN of a MoCo v2+ student) needs only this; training SEED needs the method
too (:mod:`seed_solo.harness.registration`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from solo.methods.base import BaseMethod
from torch import nn

from seed_solo.nets.library_models import PREFIXES, has_model
from seed_solo.students.registry import STUDENTS, create_student


def solo_builder(name: str) -> Callable[..., nn.Module]:
    """The student ``name`` as solo-learn's backbone table calls it: ``fn(method, **kwargs)``."""

    def build(method: str = "", **kwargs: Any) -> nn.Module:
        return create_student(name, **kwargs)

    build.__name__ = name
    return build


def register_students(backbones: Iterable[str] = ()) -> None:
    """Add every registered student, and each ``timm:NAME`` / ``torchvision:NAME`` of
    ``backbones`` whose model exists, to solo-learn's backbone table.

    Idempotent. A name solo-learn already defines (``resnet18``) keeps solo-learn's builder,
    which is the same torchvision network; an unknown library name is left out, so that the
    method's own check names the closest ones.
    """
    table = BaseMethod._BACKBONES
    for name in STUDENTS:
        table.setdefault(name, solo_builder(name))
    for name in backbones:
        if str(name).startswith(PREFIXES) and name not in table and has_model(str(name)):
            table[name] = solo_builder(str(name))
