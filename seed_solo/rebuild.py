"""Rebuild a solo-learn run's backbone by its name in ``args.json``, as solo-learn builds it.

Used wherever a trained network comes back from a checkpoint: linear and kNN evaluation of a
student, and a solo-learn checkpoint used as a teacher.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

from torch import nn

from seed_solo.students import PREFIXES, STUDENTS, create_student, unknown_student

CIFAR = ("cifar10", "cifar100")


def build_solo_backbone(name: str, kwargs: Mapping[str, Any], method: str,
                        dataset: str) -> Tuple[nn.Module, int]:
    """Build the backbone exactly as solo-learn's ``BaseMethod.__init__`` does.

    Uses ``BaseMethod._BACKBONES[name](method, **kwargs)`` when solo-learn is importable (which
    also holds seed-solo's students); otherwise torchvision ResNet-18/50 and seed-solo's
    students. Names starting with ``resnet`` lose ``fc`` and, for CIFAR, get solo's 3x3 stem.

    Returns:
        (backbone, F): the module maps images to (B, F) features.
    """
    kwargs = dict(kwargs or {})
    try:
        from solo.methods.base import BaseMethod
    except ImportError:
        backbone = _backbone_without_solo(name, kwargs)
    else:
        import seed_solo  # noqa: F401 (registers seed-solo's students into solo's table)

        table = BaseMethod._BACKBONES
        if name not in table:  # answers timm:NAME / torchvision:NAME too (students.py)
            raise ValueError(unknown_student(name, table))
        backbone = table[name](method, **kwargs)
    if name.startswith("resnet"):
        dim = backbone.inplanes
        backbone.fc = nn.Identity()
        if dataset in CIFAR:
            backbone.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
            backbone.maxpool = nn.Identity()
    else:
        dim = backbone.num_features
    return backbone, int(dim)


def _backbone_without_solo(name: str, kwargs: Dict[str, Any]) -> nn.Module:
    import torchvision


    if name in ("resnet18", "resnet50"):
        return getattr(torchvision.models, name)(**kwargs)
    if name in STUDENTS or name.startswith(PREFIXES):
        return create_student(name, **kwargs)
    raise ValueError(
        f"backbone {name!r} needs solo-learn installed to be rebuilt (without it: resnet18, "
        f"resnet50, {', '.join(sorted(STUDENTS))}); install solo-learn as the README says."
    )
