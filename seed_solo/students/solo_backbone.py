"""A backbone rebuilt by its name in ``args.json``, as solo-learn's ``BaseMethod`` builds it.

Used wherever a trained network comes back from a checkpoint: evaluation and export of a
student, and a solo-learn checkpoint used as a teacher.
"""

from __future__ import annotations

from typing import Any, Mapping, Tuple

from torch import nn

from seed_solo.core.errors import ConfigError
from seed_solo.nets.library_models import PREFIXES, drop_classifier
from seed_solo.students.registry import STUDENTS, create_student, unknown_student

CIFAR = ("cifar10", "cifar100")


def _solo_table() -> Mapping[str, Any]:
    """solo-learn's own backbone builders, or none where solo-learn is not installed."""
    try:  # optional: a seed-solo student, or a checkpoint used as a teacher, needs no solo-learn
        from solo.methods.base import BaseMethod
    except ImportError:
        return {}
    return BaseMethod._BACKBONES


def build_solo_backbone(name: str, kwargs: Mapping[str, Any], method: str,
                        dataset: str) -> Tuple[nn.Module, int]:
    """Build the backbone ``name`` exactly as solo-learn's ``BaseMethod.__init__`` does.

    solo-learn's own builder for a name it defines (``BaseMethod._BACKBONES[name](method,
    **kwargs)``), else seed-solo's student of that name (the builder ``register()`` gives
    solo-learn). Names starting with ``resnet`` lose ``fc`` and, for CIFAR, get solo's 3x3 stem.

    Returns:
        (backbone, F): the module maps images to (B, F) features.
    """
    kwargs = dict(kwargs or {})
    solo = _solo_table()
    if name in solo:
        backbone = solo[name](method, **kwargs)
    elif name in STUDENTS or str(name).startswith(PREFIXES):
        backbone = create_student(name, **kwargs)
    else:
        raise ConfigError(unknown_student(name, [*solo, *STUDENTS]) + (
            "" if solo else " (solo-learn is not installed: its own backbones are unknown)"))
    if name.startswith("resnet"):
        dim = drop_classifier(backbone)
        if dataset in CIFAR:
            backbone.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
            backbone.maxpool = nn.Identity()
    else:
        dim = backbone.num_features
    return backbone, int(dim)
