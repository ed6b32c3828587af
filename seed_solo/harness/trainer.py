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
from typing import Any, Dict, List, Optional

import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies.ddp import DDPStrategy
from omegaconf import DictConfig, OmegaConf

from seed_solo.core.errors import ConfigError
from seed_solo.runs.atomic import atomic_path, unwritable
from seed_solo.runs.folders import METRICS_FILE


class MetricsHistory(Callback):
    """Lightning callback that appends the epoch's logged metrics to ``metrics.jsonl``.

    The file sits in the run's checkpoint folder (or ``directory``), one JSON object per
    epoch, so per-epoch curves (online kNN, losses) survive without any logger service.

    The rows are also part of the checkpoint (this callback's state; it runs before the
    checkpointer at an epoch's end), and a resumed run's first row rewrites the file as the
    checkpoint knew it, plus that row: a kill between a checkpoint and its row loses no row,
    and a kill between a row and its checkpoint leaves no row twice.
    """

    def __init__(self, checkpointer: Any = None, directory: str | None = None):
        self.checkpointer = checkpointer
        self.directory = directory
        self.rows: List[Dict[str, Any]] = []
        self.restored = False

    def state_dict(self) -> Dict[str, Any]:
        return {"rows": list(self.rows)}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.rows, self.restored = list(state_dict.get("rows", [])), True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for key, value in trainer.callback_metrics.items():
            if torch.is_tensor(value) and value.numel() == 1:
                row[key] = float(value)
            elif isinstance(value, (int, float)):
                row[key] = float(value)
        self.rows.append(row)
        folder = self.directory or getattr(self.checkpointer, "path", None)
        if not trainer.is_global_zero or folder is None:
            return
        path = Path(folder) / METRICS_FILE
        setting = "metrics_dir" if self.directory else "checkpoint.dir"
        if self.restored:  # the file as the checkpoint resumed from knew it, and this row
            with atomic_path(path, setting) as tmp:
                tmp.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
            self.restored = False
            return
        try:
            os.makedirs(folder, exist_ok=True)
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as err:
            raise (unwritable(err, path, setting) or err) from err


class FiniteGuard(Callback):
    """Stops a run whose loss or trainable weights are no longer finite, naming the step.

    Every step's loss is checked on its device (no read back to the host); the flag is read
    every :attr:`every` steps and at each epoch's end, with the weights, before the epoch's
    checkpoint (this callback runs first), so a run never ends with exit code 0, and never
    checkpoints, after a NaN or an infinity.

    Args:
        labels: False for a data set without labels, where solo-learn's online classifier
            has no sample to learn from (its loss is 0/0): the loss is not checked, nor the
            classifier's weights; the rest of the weights are.
    """

    every = 100

    def __init__(self, labels: bool = True) -> None:
        self.labels = labels
        self.first_bad: Optional[torch.Tensor] = None  # global step of the first bad loss, -1

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not torch.is_tensor(loss) or not self.labels:
            return
        if self.first_bad is None or self.first_bad.device != loss.device:
            self.first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss.detach()).all() & (self.first_bad < 0)
        self.first_bad = torch.where(bad, trainer.global_step, self.first_bad)
        if (batch_idx + 1) % self.every == 0:
            self._check(trainer, pl_module, weights=False)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._check(trainer, pl_module, weights=True)

    def _check(self, trainer: Any, pl_module: Any, weights: bool) -> None:
        step = -1 if self.first_bad is None else int(self.first_bad)
        if step >= 0:
            raise ConfigError(
                f"the training loss became non-finite (NaN or inf) at step {step} (epoch "
                f"{trainer.current_epoch}); stopped before saving this epoch. Lower "
                "optimizer.lr, train at precision=32, or check the data and the teacher.")
        if weights:
            named = [(n, p) for n, p in pl_module.named_parameters() if p.requires_grad and (
                self.labels or not n.startswith("classifier."))]
            finite = torch.stack([torch.isfinite(p).all() for _, p in named]).cpu() if named \
                else torch.ones(0, dtype=torch.bool)
            bad = [n for (n, _), ok in zip(named, finite.tolist()) if not ok]
            if bad:
                raise ConfigError(
                    f"the weights {', '.join(bad[:3])} became non-finite by step "
                    f"{trainer.global_step} (epoch {trainer.current_epoch}); stopped before "
                    "saving this epoch. Lower optimizer.lr or train at precision=32.")


def build_trainer(cfg: DictConfig, callbacks: List[Any], devices: Any):
    """A Lightning Trainer from the Trainer arguments found at the top of ``cfg``, with a
    :class:`FiniteGuard` before the ``callbacks``."""
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
            "callbacks": [FiniteGuard(labels=not (cfg.get("data") or {}).get("no_labels")),
                          *callbacks],
            "enable_checkpointing": False,
            "strategy": DDPStrategy(find_unused_parameters=False)
            if strategy == "ddp"
            else (strategy or "auto"),
        }
    )
    try:
        return Trainer(**kwargs)
    except MisconfigurationException as err:  # accelerator=gpu without one, devices=3 of 2...
        text = " ".join(str(err).split())
        raise ConfigError(f"Lightning refused the trainer settings (accelerator, devices, "
                          f"strategy, precision...): {text}") from err
