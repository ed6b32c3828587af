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

from pathlib import Path
from typing import Tuple, Union

from torch import nn

from seed_solo.core.errors import CheckpointError, ConfigError
from seed_solo.runs.checkpoint_files import (
    load_exact,
    read_checkpoint,
    strip_prefix,
    unwrap_state_dict,
)
from seed_solo.runs.folders import find_checkpoint, read_args
from seed_solo.students.solo_backbone import build_solo_backbone
from seed_solo.teachers.heads import Embedder, mlp_from_state_dict, output_dim

#: solo-learn methods whose projector uses GELU between layers (all others use ReLU)
GELU_METHODS = {"dino", "vibcreg"}
#: where the projector's keys live; DINO's head is mlp -> L2 normalise -> prototypes
#: (``head.last_layer``): its embedding is the mlp's bottleneck output
PROJECTOR_PREFIX = {"dino": "head.mlp."}


def load_solo(path: Union[str, Path], head: str = "projector") -> Tuple[nn.Module, int, str]:
    """Rebuild the teacher of a solo-learn pretrain checkpoint.

    Args:
        path: the ``.ckpt`` file, or the folder holding it (the highest epoch is taken).
        head: ``projector`` (embedding = projector output, d = proj_output_dim; for DINO the
            256-d bottleneck before its prototypes) or ``none`` (embedding = backbone features).

    Returns:
        (model, d, description).
    """
    ckpt = find_checkpoint(path)
    if not ckpt.is_file():
        read_checkpoint(ckpt, what="solo-learn checkpoint")  # the FileNotFoundError naming it
    args = read_args(ckpt)
    try:
        method = args["method"]
        bb_name = args["backbone"]["name"]
    except (KeyError, TypeError) as err:
        raise CheckpointError(
            f"{str(ckpt.parent / 'args.json')!r} lacks {err}; expected solo-learn's resolved "
            "config with 'method' and 'backbone.name'."
        ) from err
    dataset = (args.get("data") or {}).get("dataset", "")
    raw = read_checkpoint(ckpt, allow_inert_objects=True, what="teacher checkpoint")
    sd = unwrap_state_dict(raw, ("state_dict",))

    backbone, feat_dim = build_solo_backbone(bb_name, args["backbone"].get("kwargs") or {},
                                             method, dataset)
    load_exact(backbone, strip_prefix(sd, "backbone."), f"{ckpt.name} backbone", "solo")
    if head == "none":
        return Embedder(backbone), feat_dim, f"solo {method} {bb_name} backbone"
    if head != "projector":
        raise ConfigError(f"head must be 'projector' or 'none', got {head!r}.")

    proj_sd = strip_prefix(sd, PROJECTOR_PREFIX.get(method, "projector."))
    if not proj_sd:
        raise CheckpointError(
            f"{ckpt.name} (method {method!r}) has no 'projector.*' keys; pass head='none' "
            "(teacher_head=none) to use the backbone's pooled features as the embedding."
        )
    act = "gelu" if method in GELU_METHODS else "relu"
    projector = mlp_from_state_dict(proj_sd, act, f"{ckpt.name} projector")
    load_exact(projector, proj_sd, f"{ckpt.name} projector", "solo")
    dim = output_dim(projector, feat_dim)
    return Embedder(backbone, projector), dim, f"solo {method} {bb_name} -> {dim}"
