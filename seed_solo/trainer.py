"""The Lightning side of the entry points, as solo-learn's ``main_*.py`` scripts set it up.

solo-learn installs its ``solo`` package but not its scripts; these rebuild what they do from
solo-learn's own modules (its Checkpointer and AutoResumer), on a CPU as well as on GPUs, plus a
``metrics.jsonl`` history per run.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, List, Optional, Tuple

import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from seed_solo.checkpointing import check_explicit_resume, find_resume, make_checkpointer
from seed_solo.launch import check_launch
from seed_solo.runs import find_checkpoint
from seed_solo.schedule import ResumedSchedule


def require_epochs(cfg: DictConfig) -> None:
    """``max_epochs`` must be a whole number of at least 1 (0 would divide by zero later)."""
    epochs = cfg.get("max_epochs")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"max_epochs={epochs}: train for at least 1 epoch (max_epochs=1 or more).")


def devices_for_parse(cfg: DictConfig, check: bool = True) -> Any:
    """solo-learn's parse_cfg scales the lr by ``len(cfg.devices) * cfg.num_nodes``: give it a
    list, after checking both against what torchrun or srun started (:mod:`seed_solo.launch`;
    ``check=False`` for a pass that trains nothing and shards over whatever was started).

    Returns the user's original value, to hand to the Trainer afterwards.
    """
    original = cfg.get("devices", 1)
    if isinstance(original, int):
        cfg.devices = list(range(max(1, original)))
    elif isinstance(original, str):
        count = int(original) if original.isdigit() else len(original.split(","))
        cfg.devices = list(range(max(1, count)))
    if check:
        check_launch(len(cfg.devices), int(cfg.get("num_nodes", 1) or 1), original)
    return original


class MetricsHistory(Callback):
    """Lightning callback that appends the epoch's logged metrics to ``metrics.jsonl``.

    The file sits in the run's checkpoint folder (or ``directory``), one JSON object per
    epoch, so per-epoch curves (online kNN, losses) survive without any logger service.
    """

    def __init__(self, checkpointer: Any = None, directory: str | None = None):
        self.checkpointer = checkpointer
        self.directory = directory

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        folder = self.directory or getattr(self.checkpointer, "path", None)
        if folder is None:
            return
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for key, value in trainer.callback_metrics.items():
            if torch.is_tensor(value) and value.numel() == 1:
                row[key] = float(value)
            elif isinstance(value, (int, float)):
                row[key] = float(value)
        os.makedirs(folder, exist_ok=True)
        with open(Path(folder) / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")


def build_trainer(cfg: DictConfig, callbacks: List[Any], devices: Any):
    """A Lightning Trainer from the Trainer arguments found at the top of ``cfg``."""
    from lightning.pytorch import Trainer
    from lightning.pytorch.strategies.ddp import DDPStrategy

    logger: Any = False  # None would make Lightning create a CSVLogger in the working dir
    if cfg.wandb.enabled:
        from lightning.pytorch.loggers.wandb import WandbLogger

        logger = WandbLogger(
            name=cfg.name,
            project=cfg.wandb.project,
            entity=cfg.wandb.entity,
            offline=cfg.wandb.offline,
        )
        logger.log_hyperparams(OmegaConf.to_container(cfg))
    kwargs = OmegaConf.to_container(cfg)
    valid = inspect.signature(Trainer.__init__).parameters
    kwargs = {name: kwargs[name] for name in valid if name in kwargs}
    strategy = cfg.strategy
    kwargs.update(
        {
            "devices": devices,
            "logger": logger,
            "callbacks": callbacks,
            "enable_checkpointing": False,
            "strategy": DDPStrategy(find_unused_parameters=False)
            if strategy == "ddp"
            else (strategy or "auto"),
        }
    )
    return Trainer(**kwargs)


def checkpoint_and_resume(cfg: DictConfig, subdir: str) -> Tuple[List[Any], str | None]:
    """The checkpointer (+ metrics history) and the checkpoint to resume from, if any.

    See :mod:`seed_solo.checkpointing`: atomic saves, identity-checked auto-resume into the
    run's own folder, the last checkpoint that opens; a resumed run follows its own lr schedule
    (:mod:`seed_solo.schedule`).
    """
    method_dir = Path(cfg.checkpoint.dir) / subdir
    ckpt_path: Optional[Path] = None
    explicit = cfg.get("resume_from_checkpoint")
    if explicit is not None:
        ckpt_path = find_checkpoint(explicit)
        check_explicit_resume(cfg, ckpt_path)
        del cfg.resume_from_checkpoint
    elif cfg.auto_resume.enabled:
        ckpt_path, _ = find_resume(cfg, method_dir)
        if ckpt_path is not None:
            print(f"Resuming from {ckpt_path}, a previous run with the same settings.")

    callbacks: List[Any] = []
    checkpointer = None
    if cfg.checkpoint.enabled:
        resumed_here = ckpt_path if ckpt_path is not None and (
            ckpt_path.parent.parent.resolve() == method_dir.resolve()) else None
        checkpointer = make_checkpointer(cfg, str(method_dir), resumed_here)
        callbacks.append(checkpointer)
    callbacks.append(MetricsHistory(checkpointer, cfg.get("metrics_dir")))
    callbacks.append(ResumedSchedule())  # the lr schedule of this run, not the checkpoint's
    return callbacks, (str(ckpt_path) if ckpt_path is not None else None)
