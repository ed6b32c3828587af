"""solo-learn pretrain checkpoints: ``<dir>/<name>-<run>-ep=E.ckpt`` with ``args.json`` beside it.

The teacher is solo's ``backbone`` followed by its ``projector``; the embedding is the
projector's output (what solo-learn's own losses compare). Everything else in the Lightning
state dict (``classifier.*``, ``momentum_*``, ``queue``, ``predictor.*``, ``prototypes.*``,
DINO's ``head.last_layer`` prototypes...) belongs to training, not to the teacher, and is
dropped; the backbone and projector key sets are checked exactly.

The projector is rebuilt from its state-dict keys (:func:`mlp_from_state_dict`) rather than by
instantiating solo's method class: every solo-learn projector is an ``nn.Sequential`` of
Linear / BatchNorm1d / activation, the keys give every width and the BatchNorm/bias choices,
and this works where solo-learn is not installed and without a method's unrelated
constructor requirements (queues, prototypes, momentum schedules). The tests compare it with
real solo-learn models built by ``solo.methods.METHODS``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple, Union

from torch import nn

from seed_solo.teachers.checkpoint import (
    load_exact,
    read_checkpoint,
    strip_prefix,
    unwrap_state_dict,
)
from seed_solo.teachers.heads import Embedder, mlp_from_state_dict, output_dim

#: solo-learn methods whose projector uses GELU between layers (all others use ReLU)
GELU_METHODS = {"dino", "vibcreg"}
#: where the projector's keys live; DINO's head is mlp -> L2 normalise -> prototypes
#: (``head.last_layer``): its embedding is the mlp's bottleneck output
PROJECTOR_PREFIX = {"dino": "head.mlp."}
CIFAR = ("cifar10", "cifar100")


def find_solo_checkpoint(path: Union[str, Path]) -> Path:
    """``path`` itself if a file, else the ``*.ckpt`` with the highest ``ep=E`` in the folder."""
    path = Path(path)
    if path.is_dir():
        ckpts = sorted(path.glob("*.ckpt"), key=lambda p: (_epoch(p), p.stat().st_mtime))
        if not ckpts:
            raise FileNotFoundError(
                f"no *.ckpt file in {str(path)!r}; pass a solo-learn checkpoint file or its folder."
            )
        return ckpts[-1]
    return path


def _epoch(p: Path) -> int:
    m = re.search(r"ep=(\d+)", p.name)
    return int(m.group(1)) if m else -1


def read_args(ckpt: Path) -> Dict[str, Any]:
    """The resolved config solo-learn wrote as ``args.json`` beside the checkpoint."""
    args_path = ckpt.parent / "args.json"
    if not args_path.is_file():
        raise FileNotFoundError(
            f"{str(args_path)!r} not found: a solo-learn checkpoint needs the args.json that "
            "solo-learn writes beside it (it names the backbone and method); copy it next to "
            f"{ckpt.name}."
        )
    with open(args_path) as f:
        return json.load(f)


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
        if name not in table:
            raise ValueError(
                f"backbone {name!r} of the solo-learn checkpoint is not in solo-learn's backbone "
                f"table; known: {', '.join(sorted(table))}."
            )
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

    from seed_solo.backbones import STUDENTS, create_student

    if name in ("resnet18", "resnet50"):
        return getattr(torchvision.models, name)(**kwargs)
    if name in STUDENTS:
        return create_student(name, **kwargs)
    raise ValueError(
        f"backbone {name!r} needs solo-learn installed to be rebuilt (without it: resnet18, "
        f"resnet50, {', '.join(sorted(STUDENTS))}); install solo-learn as the README says."
    )


def load_solo(path: Union[str, Path], head: str = "projector") -> Tuple[nn.Module, int, str]:
    """Rebuild the teacher of a solo-learn pretrain checkpoint.

    Args:
        path: the ``.ckpt`` file, or the folder holding it (the highest epoch is taken).
        head: ``projector`` (embedding = projector output, d = proj_output_dim; for DINO the
            256-d bottleneck before its prototypes) or ``none`` (embedding = backbone features).

    Returns:
        (model, d, description).
    """
    ckpt = find_solo_checkpoint(path)
    if not ckpt.is_file():
        read_checkpoint(ckpt)  # raises the FileNotFoundError with what to pass
    args = read_args(ckpt)
    try:
        method = args["method"]
        bb_name = args["backbone"]["name"]
    except (KeyError, TypeError) as err:
        raise ValueError(
            f"{str(ckpt.parent / 'args.json')!r} lacks {err}; expected solo-learn's resolved "
            "config with 'method' and 'backbone.name'."
        ) from err
    dataset = (args.get("data") or {}).get("dataset", "")
    sd = unwrap_state_dict(read_checkpoint(ckpt, allow_inert_objects=True), ("state_dict",))

    backbone, feat_dim = build_solo_backbone(bb_name, args["backbone"].get("kwargs") or {},
                                             method, dataset)
    load_exact(backbone, strip_prefix(sd, "backbone."), f"{ckpt.name} backbone", "solo")
    if head == "none":
        return Embedder(backbone), feat_dim, f"solo {method} {bb_name} backbone"
    if head != "projector":
        raise ValueError(f"head must be 'projector' or 'none', got {head!r}.")

    proj_sd = strip_prefix(sd, PROJECTOR_PREFIX.get(method, "projector."))
    if not proj_sd:
        raise ValueError(
            f"{ckpt.name} (method {method!r}) has no 'projector.*' keys; pass head='none' "
            "(teacher_head=none) to use the backbone's pooled features as the embedding."
        )
    act = "gelu" if method in GELU_METHODS else "relu"
    projector = mlp_from_state_dict(proj_sd, act, f"{ckpt.name} projector")
    load_exact(projector, proj_sd, f"{ckpt.name} projector", "solo")
    dim = output_dim(projector, feat_dim)
    return Embedder(backbone, projector), dim, f"solo {method} {bb_name} -> {dim}"
