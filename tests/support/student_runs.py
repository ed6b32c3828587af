"""A trained student's run folder without training one: ``args.json`` and a ``.ckpt`` of a
random tiny_resnet10 backbone, in solo-learn's layout (what linear, kNN, fine-tuning and
transfer read through ``seed_solo.students.load``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from seed_solo.students.registry import create_student

WIDTH = 8  # tiny_resnet10 at width 8: 64 features


def write_student_run(folder: Path, seed: int = 0, method: str = "mocov2plus",
                      crop: int = 32, epoch: int = 0) -> Path:
    """``folder/args.json`` and ``folder/student-<name>-ep=<epoch>.ckpt``; returns the .ckpt.

    The backbone's weights (and BatchNorm statistics) are drawn from ``seed``, so two seeds give
    two different students."""
    torch.manual_seed(seed)
    backbone = create_student("tiny_resnet10", width=WIDTH)
    with torch.no_grad():
        for name, buf in backbone.named_buffers():
            if name.endswith("running_mean"):
                buf.uniform_(-0.2, 0.2)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    folder.mkdir(parents=True, exist_ok=True)
    args = {"name": "student", "method": method,
            "backbone": {"name": "tiny_resnet10", "kwargs": {"width": WIDTH}},
            "data": {"dataset": "custom"},
            "augmentations": [{"crop_size": crop, "mean": [0.485, 0.456, 0.406],
                               "std": [0.229, 0.224, 0.225]}]}
    (folder / "args.json").write_text(json.dumps(args))
    ckpt = folder / f"student-{folder.name}-ep={epoch}.ckpt"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in backbone.state_dict().items()},
                "epoch": epoch, "global_step": 0}, ckpt)
    return ckpt
