"""The Lightning Trainer of the commands, as solo-learn's ``main_*.py`` scripts set it up,
on a CPU as well as on GPUs, plus a ``metrics.jsonl`` history per run.

solo-learn installs its ``solo`` package but not its scripts; the commands rebuild what they do
from solo-learn's own modules.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, List

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies.ddp import DDPStrategy
from omegaconf import DictConfig, OmegaConf

from seed_solo.runs.folders import METRICS_FILE


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
        with open(Path(folder) / METRICS_FILE, "a") as f:
            f.write(json.dumps(row) + "\n")


def build_trainer(cfg: DictConfig, callbacks: List[Any], devices: Any):
    """A Lightning Trainer from the Trainer arguments found at the top of ``cfg``."""
    logger: Any = False  # None would make Lightning create a CSVLogger in the working dir
    if cfg.wandb.enabled:
        from lightning.pytorch.loggers.wandb import WandbLogger  # optional: wandb

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
