"""The model an evaluation reads features from, and its features of every image of a loader.

A model here maps (B, 3, H, W) images to ``{"feats": (B, F), "z": (B, d)}``, as solo-learn's
methods do: a trained student (:func:`trained_model`) or a frozen teacher
(:class:`TeacherFeatures`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from solo.methods import METHODS
from torch import Tensor, nn
from tqdm import tqdm

from seed_solo.core.errors import CheckpointError
from seed_solo.core.objectives.registry import DISTILL_METHODS
from seed_solo.runs.checkpoint_files import read_checkpoint
from seed_solo.students.load import load_student, with_projector


def trained_model(source: Any) -> Tuple[nn.Module, DictConfig, Path]:
    """(model, its args.json, checkpoint) of a run folder or ``.ckpt``, without any teacher.

    A distilled student (``seed``, ``seed_mocov2``) is its backbone and head
    (:func:`with_projector`; never the teacher); a run of any other solo-learn method is that
    method rebuilt from ``args.json`` with every key loaded (a seed-solo student inside it
    needs :func:`seed_solo.harness.backbones.register_students`).
    """
    student = load_student(source)
    cfg = OmegaConf.create(student.args)
    if cfg.method in DISTILL_METHODS:
        return with_projector(student), cfg, student.checkpoint
    model = METHODS[cfg.method](cfg)
    result = model.load_state_dict(read_checkpoint(
        student.checkpoint, allow_inert_objects=True)["state_dict"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{student.checkpoint} does not fit a {cfg.method} model built from args.json: "
            f"missing {result.missing_keys}, unexpected {result.unexpected_keys}."
        )
    return model, cfg, student.checkpoint


class TeacherFeatures(nn.Module):
    """A frozen teacher as a model to evaluate: ``feats`` its raw embedding, ``z`` normalised."""

    def __init__(self, teacher: nn.Module):
        super().__init__()
        self.teacher = teacher

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        feats = self.teacher.model(x)
        return {"feats": feats, "z": F.normalize(feats.float(), dim=-1)}


@torch.no_grad()
def extract_features(loader: Any, model: nn.Module, device: torch.device):
    """(backbone features, projected features, labels) of every image in ``loader``."""
    model.eval()
    feats, zs, labels = [], [], []
    for images, targets in tqdm(loader, desc="features", leave=False):
        out = model(images.to(device, non_blocking=True))
        feats.append(out["feats"].float().cpu())
        zs.append(out["z"].float().cpu())
        labels.append(targets)
    return torch.cat(feats), torch.cat(zs), torch.cat(labels)
