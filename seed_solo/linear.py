"""``python -m seed_solo.linear``: a linear classifier on a frozen student backbone, on
solo-learn's harness (its linear config schema).

    python -m seed_solo.linear --config-path configs/linear/imagenet --config-name seed_mbv3 \
        pretrained_feature_extractor=trained_models/seed/RUN/NAME-RUN-ep=199.ckpt

Only the student's ``backbone.*`` weights are read: evaluation never needs the teacher.
"""

from __future__ import annotations

import torch
from lightning.pytorch import seed_everything
from omegaconf import DictConfig

from seed_solo.data.dali import check_device, classification_datamodule
from seed_solo.data.loaders import loaders_from_cfg
from seed_solo.evaluation.linear import (
    linear_model,
    require_top5,
    student_checkpoint,
    train_transform,
)
from seed_solo.harness.checkpointer import checkpoint_and_resume
from seed_solo.harness.config import parse_linear
from seed_solo.harness.hydra_cli import run_hydra
from seed_solo.harness.trainer import build_trainer
from seed_solo.runs.atomic import write_json
from seed_solo.students.load import load_backbone


def run(cfg: DictConfig) -> dict:
    """Train a linear classifier on the frozen student backbone; returns the final metrics."""
    ckpt = student_checkpoint(cfg)
    cfg, devices = parse_linear(cfg)
    seed_everything(cfg.seed)
    dali = cfg.data.format == "dali"
    if dali:
        check_device(cfg, torch.cuda.is_available())
    aug = cfg.data.augmentations
    train_loader, val_loader = loaders_from_cfg(cfg, aug.crop_size, aug.mean, aug.std,
                                                train_transform=train_transform(cfg))
    require_top5(getattr(train_loader.dataset, "classes", None), cfg.data.train_path)
    student = load_backbone(ckpt, cfg.backbone.name, cfg.backbone.kwargs,
                            cfg.pretrain_method or "", cfg.data.dataset)
    print(f"Loaded the student backbone from {ckpt}")
    model = linear_model(student.backbone, cfg)
    callbacks, ckpt_path = checkpoint_and_resume(cfg, "linear")
    trainer = build_trainer(cfg, callbacks, devices)
    if dali:
        datamodule = classification_datamodule(cfg)
        datamodule.val_dataloader = lambda: val_loader
        trainer.fit(model, ckpt_path=ckpt_path, datamodule=datamodule)
    else:
        trainer.fit(model, train_loader, val_loader, ckpt_path=ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    result = {"checkpoint": ckpt, "epochs": cfg.max_epochs, **metrics}
    write_json(cfg.get("output_json"), result)
    return result


HELP = """
usage: python -m seed_solo.linear --config-path DIR --config-name NAME [KEY=VALUE ...]

Trains a linear classifier on a frozen student backbone, from a hydra config in solo-learn's
linear schema. DIR may be relative to this folder. The teacher is never needed.

Configs (in a checkout): configs/linear/{imagenet,imagenet-100,cifar}/, one file per student;
scripts/linear/ wraps them.
Keys to set: pretrained_feature_extractor (the student's .ckpt, or its run folder: the last
checkpoint is taken), data.train_path, data.val_path.
Often changed: max_epochs, devices, accelerator (cpu), optimizer.batch_size, data.format
(dali | image_folder), dali.device (gpu | cpu), output_json.
"""


def main(cfg: DictConfig) -> None:
    result = run(cfg)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})


if __name__ == "__main__":
    run_hydra(main, HELP)
