"""``python -m seed_solo.distill``: distil a frozen teacher into a student (or pretrain with any
solo-learn method) on solo-learn's harness.

    python -m seed_solo.distill --config-path configs/distill/imagenet --config-name seed_mbv3 \
        data.train_path=/data/imagenet/train method_kwargs.teacher=mocov2-r50-800ep

Takes solo-learn's pretrain config schema and runs ``method=seed`` or any solo-learn method,
on GPUs (DDP, DALI) or on a CPU (``accelerator=cpu devices=1``; DALI with ``dali.device=cpu``).
"""

from __future__ import annotations

# first: third-party import warnings off before solo-learn, timm and torchmetrics load
from seed_solo.harness import quiet_imports  # noqa: F401

# isort: split

from pathlib import Path
from typing import Optional

from lightning.pytorch import seed_everything
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from seed_solo.harness.checkpointer import checkpoint_and_resume, run_complete, run_folder
from seed_solo.harness.hydra_cli import run_hydra
from seed_solo.harness.pretrain import build_method, parse_pretrain
from seed_solo.harness.registration import register
from seed_solo.harness.trainer import build_trainer
from seed_solo.harness.training_data import training_data
from seed_solo.runs.folders import METRICS_FILE, last_checkpoint


def run(cfg: DictConfig) -> Optional[Path]:
    """Parse ``cfg`` as solo-learn's main_pretrain does; data, model, trainer; fit. Returns the
    run folder (a run already complete is not trained again)."""
    cfg, devices = parse_pretrain(cfg)
    seed_everything(cfg.seed)
    data = training_data(cfg)
    model = build_method(cfg)
    callbacks, ckpt_path = checkpoint_and_resume(cfg, cfg.method)
    if run_complete(cfg, ckpt_path):
        return run_folder([], ckpt_path)
    callbacks += data.callbacks(callbacks)
    trainer = build_trainer(cfg, callbacks, devices)
    data.fit(trainer, model, ckpt_path)
    return run_folder(callbacks, ckpt_path)


HELP = """
usage: python -m seed_solo.distill --config-path DIR --config-name NAME [KEY=VALUE ...]

Distils a frozen teacher into a student (method=seed), or pretrains with any solo-learn method,
from a hydra config in solo-learn's pretrain schema. DIR may be relative to this folder.

Configs (in a checkout): configs/distill/{imagenet,imagenet-100,cifar}/, one file per student
(seed_mbv3, seed_effb0, seed_r18, seed_r34); scripts/distill/ wraps them.
Keys to set: data.train_path, data.val_path, method_kwargs.teacher (a zoo name from
`seed-solo zoo list`, a checkpoint path or url, or torchvision:NAME / timm:NAME).
Often changed: max_epochs, devices, accelerator (cpu), optimizer.batch_size, data.format
(dali | image_folder), dali.device (gpu | cpu: DALI without a GPU), checkpoint.dir. Any other
key of the config as KEY=VALUE; a key the config lacks as +KEY=VALUE.
"""


@rank_zero_only
def report(folder: Optional[Path]) -> None:
    """Where the run's results are: its folder, last checkpoint and metrics."""
    if folder is not None:
        ckpt = last_checkpoint(folder, log=lambda *_: None)
        print(f"seed-solo: run folder {folder}: checkpoint {ckpt.name if ckpt else 'none'}, "
              f"metrics {METRICS_FILE} (evaluate: scripts/knn, scripts/linear; export: "
              f"seed-solo export {folder})")


def main(cfg: DictConfig) -> None:
    report(run(cfg))


if __name__ == "__main__":
    register()  # before the overrides are checked: they may name the method's keys
    run_hydra(main, HELP)
