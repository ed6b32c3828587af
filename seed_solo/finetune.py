"""``python -m seed_solo.finetune``: semi-supervised evaluation of a student, the whole network
fine-tuned with a new classifier on a subset of the labels, on solo-learn's harness (its linear
config schema, ``finetune: True``).

    python -m seed_solo.finetune --config-path configs/finetune/imagenet \
        --config-name seed_r18_1pct pretrained_feature_extractor=trained_models/seed/RUN \
        subset.file=imagenet_subsets/1percent.txt

The labelled images are ``subset.file`` (SimCLR's list format), ``subset.per_class`` or
``subset.fraction`` (seeded, class-balanced: :mod:`seed_solo.evaluation.subsets`); the run's
identity holds the subset, so a rerun resumes the same fine-tuning and a 1 % run never resumes a
10 % one. Only the student's ``backbone.*`` weights are read: the teacher is never needed.
"""

from __future__ import annotations

# first: third-party import warnings off before solo-learn, timm and torchmetrics load
from seed_solo.harness import quiet_imports  # noqa: F401

# isort: split

import math
from typing import Any, List

from lightning.pytorch import seed_everything
from omegaconf import DictConfig

from seed_solo.core.errors import ConfigError
from seed_solo.evaluation.finetune import SubsetRecord, finetune_model
from seed_solo.evaluation.linear import (
    classification_loaders,
    fit,
    require_top5,
    student_checkpoint,
)
from seed_solo.evaluation.subsets import (
    Sample,
    SubsetSpec,
    check_image_folder,
    check_same_classes,
    digest,
    restrict,
    select,
    subset_spec,
)
from seed_solo.harness.checkpointer import (
    RunCheckpointer,
    checkpoint_and_resume,
    finished_metrics,
    run_complete,
    run_folder,
)
from seed_solo.harness.config import global_batch, parse_linear
from seed_solo.harness.hydra_cli import run_hydra
from seed_solo.harness.progress import say_done
from seed_solo.harness.trainer import build_trainer
from seed_solo.runs.atomic import write_json
from seed_solo.students.load import load_backbone


def check_data(cfg: DictConfig) -> None:
    """Image folders with the same, non-empty classes; no ``data.fraction`` (one subset rule)."""
    if float(cfg.data.get("fraction", -1) or -1) > 0:
        raise ConfigError(
            f"data.fraction={cfg.data.fraction} is solo-learn's random split; fine-tuning takes "
            "its labels from subset.file, subset.per_class or subset.fraction instead."
        )
    if cfg.data.dataset not in ("imagenet", "imagenet100", "custom"):
        raise ConfigError(f"data.dataset={cfg.data.dataset}: fine-tuning reads image folders "
                          "(data.dataset imagenet, imagenet100 or custom).")
    train = check_image_folder(cfg.data.train_path)
    check_same_classes(train, check_image_folder(cfg.data.val_path), cfg.data.train_path,
                       cfg.data.val_path)


def scale_lr(cfg: DictConfig, base_lr: float) -> None:
    """``optimizer.lr_scaling: sqrt``: lr = base lr x sqrt(global batch), SimCLR's rule for
    fine-tuning, in place of solo-learn's base lr x global batch / 256 (``linear``)."""
    rule = cfg.optimizer.get("lr_scaling", "linear")
    if rule not in ("linear", "sqrt"):
        raise ConfigError(f"optimizer.lr_scaling={rule!r}; use linear or sqrt.")
    if rule == "sqrt":
        cfg.optimizer.lr = base_lr * math.sqrt(global_batch(cfg))


def labelled(cfg: DictConfig, spec: SubsetSpec, train_set: Any) -> List[Sample]:
    """The subset ``spec`` of the training folder; the data set now serves only it, and
    ``cfg.subset`` records its size and digest (part of the run's identity).

    Raises:
        ConfigError: fewer images than one global batch (every batch but a full one is
            dropped, so nothing would train).
    """
    chosen = select(train_set.samples, train_set.classes, spec, cfg.data.train_path)
    batch = global_batch(cfg)
    if len(chosen) < batch:
        raise ConfigError(
            f"the subset ({spec.describe()}) has {len(chosen)} images, fewer than one global "
            f"batch of {batch}; lower optimizer.batch_size (or use more labels)."
        )
    restrict(train_set, chosen)
    cfg.subset.images, cfg.subset.digest = len(chosen), digest(chosen)
    print(f"Fine-tuning on {len(chosen)} labelled images of {len(train_set.classes)} classes: "
          f"{spec.describe()}.")
    return chosen


def run(cfg: DictConfig) -> dict:
    """Fine-tune the whole student and a new classifier on the label subset; returns the final
    metrics (``val_acc1``, ``val_acc5`` in %)."""
    ckpt = student_checkpoint(cfg)
    spec = subset_spec(cfg)
    check_data(cfg)
    base_lr = float(cfg.optimizer.lr)
    cfg, devices = parse_linear(cfg)
    scale_lr(cfg, base_lr)
    seed_everything(cfg.seed)
    train_loader, val_loader = classification_loaders(cfg)
    require_top5(train_loader.dataset.classes, cfg.data.train_path)
    chosen = labelled(cfg, spec, train_loader.dataset)
    student = load_backbone(ckpt, cfg.backbone.name, cfg.backbone.kwargs,
                            cfg.pretrain_method or "", cfg.data.dataset)
    print(f"Loaded the student backbone from {ckpt}")
    model = finetune_model(student.backbone, cfg)
    callbacks, ckpt_path = checkpoint_and_resume(cfg, "finetune")
    if run_complete(cfg, ckpt_path):  # trained before: its last epoch's metrics
        metrics = finished_metrics(ckpt_path)
    else:
        checkpointer = next((c for c in callbacks if isinstance(c, RunCheckpointer)), None)
        trainer = build_trainer(cfg, [*callbacks, SubsetRecord(chosen, checkpointer)], devices)
        metrics = fit(trainer, model, cfg, train_loader, val_loader, ckpt_path, chosen)
    folder = run_folder(callbacks, ckpt_path)
    result = {"checkpoint": ckpt, "epochs": cfg.max_epochs, "subset": spec.describe(),
              "labelled_images": len(chosen), "subset_digest": cfg.subset.digest,
              "run_folder": str(folder) if folder else None, **metrics}
    write_json(cfg.get("output_json"), result, "output_json")
    return result


HELP = """
usage: python -m seed_solo.finetune --config-path DIR --config-name NAME [KEY=VALUE ...]

Fine-tunes the whole student with a new classifier on a subset of the labels (semi-supervised
evaluation), from a hydra config in solo-learn's linear schema. The teacher is never needed.

Configs (in a checkout): configs/finetune/imagenet/seed_<student>_{1,10}pct.yaml (SimCLR's
fine-tuning recipe); scripts/finetune/imagenet/ wraps them (docs/evaluation.md).
Keys to set: pretrained_feature_extractor (the student's .ckpt, or its run folder),
data.train_path, data.val_path, and one of subset.file (SimCLR's 1percent.txt / 10percent.txt:
one image file name per line), subset.per_class (k images per class) or subset.fraction (of each
class); subset.seed picks the seeded subsets.
Often changed: max_epochs, devices, accelerator (cpu), optimizer.batch_size, data.format
(dali | image_folder), dali.device (gpu | cpu), output_json.
"""


def main(cfg: DictConfig) -> None:
    say_done("fine-tuning", run(cfg), cfg.get("output_json"))


if __name__ == "__main__":
    run_hydra(main, HELP)
