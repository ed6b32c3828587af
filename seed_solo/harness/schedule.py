"""A resumed run follows its own lr schedule, not the one saved in the checkpoint.

Lightning restores an lr scheduler's ``state_dict``, and solo-learn's warm-up cosine schedule
(``LinearWarmupCosineAnnealingLR``, any method's and the linear model's) keeps its base lrs
(scaled by the global batch of the run that built it) and its warm-up and total lengths (in
steps, from that run's steps per epoch and ``max_epochs``) there. A run resumed with a larger
``max_epochs`` or on another number of processes would follow the old schedule (or divide by
zero past its end). :class:`ResumedSchedule` keeps the schedule the current run built (its
lengths and base lrs) and puts it at the same training progress, in epochs: completed epochs
times the new steps per epoch; each parameter group's lr is the schedule's closed-form value
there. The optimizer's own state (momentum) stays as restored.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Dict, List, Optional

from lightning.pytorch.callbacks import Callback

# what the run's config decides; the step counters (last_epoch...) come from the checkpoint
KEPT = ("base_lrs", "warmup_epochs", "max_epochs", "warmup_start_lr", "eta_min", "get_lr")


def warmup_cosine_lr(base_lr: float, step: float, warmup: float, total: float,
                     start_lr: float, eta_min: float) -> float:
    """The lr after ``step`` scheduler steps: linear warm-up from ``start_lr`` over ``warmup``
    steps, then a cosine to ``eta_min`` at ``total`` (solo-learn's closed form)."""
    if step < warmup:
        if step == 0 or warmup <= 1:
            return start_lr
        return start_lr + step * (base_lr - start_lr) / (warmup - 1)
    if total <= warmup:
        return eta_min
    return eta_min + 0.5 * (base_lr - eta_min) * (
        1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def _warmup_cosine(scheduler: Any) -> bool:
    """solo-learn's ``LinearWarmupCosineAnnealingLR``, or any scheduler with its settings."""
    return all(hasattr(scheduler, k) for k in KEPT[:5])


def _static_lrs(scheduler: Any) -> Dict[int, float]:
    """solo-learn's ``static_lr`` groups (an lr the schedule never changes), by index."""
    get_lr = scheduler.__dict__.get("get_lr")
    if isinstance(get_lr, partial):
        return dict(zip(get_lr.keywords["param_group_indexes"],
                        get_lr.keywords["lrs_to_replace"]))
    return {}


class ResumedSchedule(Callback):
    """Re-derives each warm-up cosine schedule after Lightning restored a checkpoint.

    Lightning builds the optimizers and schedulers (``strategy.setup``), calls ``on_fit_start``,
    then restores the checkpoint's training state, then calls ``on_train_start``: the fresh
    schedule is captured in the first and put back in the second. The run's global batch and
    length travel in the checkpoint (this callback's state), for the line it prints.
    """

    def __init__(self, say=print):
        self.say = say
        self.fresh: List[Optional[Dict[str, Any]]] = []
        self.run: Dict[str, Any] = {}
        self.previous: Dict[str, Any] = {}

    def state_dict(self) -> Dict[str, Any]:
        return dict(self.run)

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.previous = dict(state_dict)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        batch = getattr(pl_module, "batch_size", None)
        self.run = {"epochs": trainer.max_epochs,
                    "global_batch": batch * trainer.world_size if batch else None}
        self.fresh = [
            {k: config.scheduler.__dict__[k] for k in KEPT if k in config.scheduler.__dict__}
            if _warmup_cosine(config.scheduler) else None
            for config in trainer.lr_scheduler_configs
        ]

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.ckpt_path is None:
            return
        epochs = trainer.current_epoch  # whole epochs done: checkpoints are written at their ends
        for config, fresh in zip(trainer.lr_scheduler_configs, self.fresh):
            if fresh is None:
                continue
            scheduler = config.scheduler
            old_lr = scheduler.base_lrs[0]
            per_epoch = (fresh["max_epochs"] / trainer.max_epochs
                         if config.interval == "step" else 1)
            scheduler.__dict__.update(fresh)
            scheduler.last_epoch = round(epochs * per_epoch)
            lrs = [warmup_cosine_lr(base, scheduler.last_epoch, scheduler.warmup_epochs,
                                    scheduler.max_epochs, scheduler.warmup_start_lr,
                                    scheduler.eta_min) for base in scheduler.base_lrs]
            for index, lr in _static_lrs(scheduler).items():
                lrs[index] = lr
            for group, base, lr in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, lrs):
                group["initial_lr"], group["lr"] = base, lr
            scheduler._last_lr = list(lrs)
            if trainer.is_global_zero:
                self.say(self.describe(old_lr, scheduler.base_lrs[0], epochs, lrs[0]))

    def describe(self, old_lr: float, new_lr: float, epochs: int, lr: float) -> str:
        """One line: base lr, global batch and length before and after, and where it resumes."""
        old, new = self.previous, self.run
        batch = (f" (global batch {old['global_batch']} -> {new['global_batch']})"
                 if old.get("global_batch") and new.get("global_batch") else "")
        length = f"{old['epochs']} -> " if old.get("epochs") else ""
        return (f"lr schedule re-derived for this run: base lr {old_lr:.6g} -> {new_lr:.6g}"
                f"{batch}, {length}{new['epochs']} epochs; resumed after {epochs} epochs "
                f"at lr {lr:.6g}.")
