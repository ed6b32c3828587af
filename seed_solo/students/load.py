"""The one way to load a trained student: its backbone (and projector) from a checkpoint.

Linear and kNN evaluation, export and the evaluation commands to come load a student here. The
backbone is rebuilt by name (:func:`build_solo_backbone`) and loaded with every key checked;
no teacher code is imported, and the teacher's weights are never needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch.nn.functional as F
from torch import Tensor, nn

from seed_solo.core.errors import MissingFileError
from seed_solo.core.objectives.registry import METHOD, objective
from seed_solo.nets.projector import student_head
from seed_solo.runs.checkpoint_files import load_prefixed, read_checkpoint
from seed_solo.runs.folders import find_checkpoint, read_args
from seed_solo.students.solo_backbone import build_solo_backbone


class Student(nn.Module):
    """Backbone plus optional projector: returns ``feats`` and ``z`` like solo's methods."""

    def __init__(self, backbone: nn.Module, projector: Optional[nn.Module] = None):
        super().__init__()
        self.backbone = backbone
        self.projector = projector

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        feats = self.backbone(x)
        z = F.normalize(self.projector(feats), dim=-1) if self.projector is not None else feats
        return {"feats": feats, "z": z}


@dataclass
class TrainedStudent:
    """A student loaded from a checkpoint.

    Attributes:
        backbone: the network, (B, 3, H, W) -> (B, F), in eval mode.
        features: F.
        args: the run's ``args.json`` (empty for a bare backbone checkpoint).
        checkpoint: the file it was read from.
        state: the checkpoint's ``state_dict``, for further heads.
    """

    backbone: nn.Module
    features: int
    args: Dict[str, Any]
    checkpoint: Path
    state: Mapping[str, Tensor]


def load_backbone(checkpoint: Union[str, Path], name: str, kwargs: Mapping[str, Any],
                  method: str = "", dataset: str = "imagenet",
                  args: Optional[Dict[str, Any]] = None) -> TrainedStudent:
    """The backbone ``name`` (built as solo-learn builds it) with the ``backbone.*`` weights of
    ``checkpoint``, every key checked.

    Raises:
        FileNotFoundError: ``checkpoint`` does not exist.
        ValueError: unreadable, or its keys do not fit the backbone (named).
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise MissingFileError(f"{str(checkpoint)!r} does not exist; pass a run folder "
                               "(<checkpoint.dir>/<method>/<run>) or a .ckpt inside one.")
    backbone, features = build_solo_backbone(name, kwargs, method, dataset)
    state = read_checkpoint(checkpoint, allow_inert_objects=True,
                            what="student checkpoint")["state_dict"]
    load_prefixed(backbone, state, "backbone.", "backbone")
    return TrainedStudent(backbone.eval(), features, args or {}, checkpoint, state)


def load_student(source: Union[str, Path]) -> TrainedStudent:
    """The student of a run folder (its last checkpoint) or of a ``.ckpt`` with ``args.json``
    beside it, rebuilt from ``args.json``."""
    checkpoint = find_checkpoint(source)
    if not checkpoint.is_file():
        raise MissingFileError(f"{str(checkpoint)!r} does not exist; pass a run folder "
                               "(<checkpoint.dir>/<method>/<run>) or a .ckpt inside one.")
    args = read_args(checkpoint)
    bb = args.get("backbone") or {}
    return load_backbone(checkpoint, bb["name"], bb.get("kwargs") or {}, args.get("method", ""),
                         (args.get("data") or {}).get("dataset", "imagenet"), args)


def with_projector(student: TrainedStudent) -> Student:
    """A distilled student's backbone and head (z = its L2-normalised output): the head of the
    run's ``method_kwargs.head`` (SEED's MLP for runs before it existed, and MoCo's projector
    for ``seed_mocov2``, the same shape); none for an objective without a global term (dense:
    z = the backbone's features)."""
    kw = student.args["method_kwargs"]
    obj = objective(kw.get("objective", "seed"))
    if obj.global_term is None:
        return Student(student.backbone)
    kind = "mlp" if obj.method != METHOD else kw.get("head", "mlp")
    projector = student_head(kind, student.features, kw["proj_hidden_dim"],
                             kw["proj_output_dim"])
    load_prefixed(projector, student.state, "projector.", "projector")
    return Student(student.backbone, projector.eval())
