"""``python -m seed_solo.linear``: a linear classifier on a frozen student backbone, on
solo-learn's harness (its linear config schema).

    python -m seed_solo.linear --config-path configs/linear/imagenet --config-name seed_mbv3 \
        pretrained_feature_extractor=trained_models/seed/RUN/NAME-RUN-ep=199.ckpt

Only the student's ``backbone.*`` weights are read: evaluation never needs the teacher.
"""

from __future__ import annotations

# first: third-party import warnings off before solo-learn, timm and torchmetrics load
from seed_solo.harness import quiet_imports  # noqa: F401

# isort: split

from lightning.pytorch import seed_everything
from omegaconf import DictConfig

from seed_solo.evaluation.linear import (
    classification_loaders,
    fit,
    linear_model,
    require_top5,
    student_checkpoint,
)
from seed_solo.harness.checkpointer import (
    checkpoint_and_resume,
    finished_metrics,
    run_complete,
    run_folder,
)
from seed_solo.harness.config import parse_linear
from seed_solo.harness.hydra_cli import run_hydra
from seed_solo.harness.progress import say_done
from seed_solo.harness.trainer import build_trainer
from seed_solo.runs.atomic import write_json
from seed_solo.students.load import load_backbone


def run(cfg: DictConfig) -> dict:
    """Train a linear classifier on the frozen student backbone; returns the final metrics."""
    ckpt = student_checkpoint(cfg)
    cfg, devices = parse_linear(cfg)
    seed_everything(cfg.seed)
    train_loader, val_loader = classification_loaders(cfg)
    require_top5(getattr(train_loader.dataset, "classes", None), cfg.data.train_path)
    student = load_backbone(ckpt, cfg.backbone.name, cfg.backbone.kwargs,
                            cfg.pretrain_method or "", cfg.data.dataset)
    print(f"Loaded the student backbone from {ckpt}")
    model = linear_model(student.backbone, cfg)
    callbacks, ckpt_path = checkpoint_and_resume(cfg, "linear")
    if run_complete(cfg, ckpt_path):  # trained before: its last epoch's metrics
        metrics = finished_metrics(ckpt_path)
    else:
        trainer = build_trainer(cfg, callbacks, devices)
        metrics = fit(trainer, model, cfg, train_loader, val_loader, ckpt_path)
    folder = run_folder(callbacks, ckpt_path)
    result = {"checkpoint": ckpt, "epochs": cfg.max_epochs,
              "run_folder": str(folder) if folder else None, **metrics}
    write_json(cfg.get("output_json"), result, "output_json")
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
    say_done("linear evaluation", run(cfg), cfg.get("output_json"))


if __name__ == "__main__":
    run_hydra(main, HELP)
