"""One line per epoch with the time left: what a run prints besides Lightning's progress bar.

Lightning's bar shows the steps of the current epoch only; a run of many epochs also needs the
whole run's remaining time. :class:`EpochProgress` prints, after every training epoch, the
epoch's wall time, its losses and an estimate of the time left (the mean epoch time of this
process times the epochs left) with the clock time it points to.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

import torch
from lightning.pytorch.callbacks import Callback

#: the logged values an epoch line shows, when the run logs them
SHOWN = ("train_seed_loss", "train_loss", "val_knn_acc1", "val_acc1")


def duration(seconds: float) -> str:
    """``seconds`` as ``45 s``, ``12 min`` or ``3.4 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def say_done(what: str, result: Dict[str, Any], output_json: Optional[str]) -> None:
    """An evaluation's result, then where it is (``seed-solo: WHAT done: run folder ...``)."""
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})
    where = [f"run folder {result['run_folder']}"] if result["run_folder"] else []
    where += [f"results {output_json}"] if output_json else []
    if where:
        print(f"seed-solo: {what} done: {', '.join(where)}")


class EpochProgress(Callback):
    """After each training epoch: ``epoch E/N done in T; loss ...; about X left (ETA hh:mm)``
    (``epoch E (step S/N)`` for a run bounded by steps).

    The estimate is the mean epoch time since this process started training (a resumed run
    counts only the epochs it trained itself) times the epochs left; printed by rank 0.
    """

    def __init__(self, log: Callable[[str], Any] = print, clock: Callable[[], float] = time.time):
        self.say = log
        self.clock = clock
        self.started: Optional[float] = None
        self.epoch_started: Optional[float] = None
        self.trained = 0
        self.first_step = 0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.started = self.clock()
        self.trained = 0
        self.first_step = trainer.global_step

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.epoch_started = self.clock()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero or self.started is None or self.epoch_started is None:
            return
        now = self.clock()
        self.trained += 1
        epoch, total = trainer.current_epoch + 1, trainer.max_epochs
        if total is not None and total >= 0:
            where = f"{epoch}/{total}"
            left = max(0, total - epoch) * (now - self.started) / self.trained
        else:  # a run bounded by steps (seed_solo.detect): the steps left
            step, steps = trainer.global_step, trainer.max_steps
            where = f"{epoch} (step {step}/{steps})"
            left = max(0, steps - step) * (now - self.started) / max(1, step - self.first_step)
        values = [f"{k} {float(v):.4g}" for k in SHOWN
                  if torch.is_tensor(v := trainer.callback_metrics.get(k)) and v.numel() == 1]
        eta = time.strftime("%H:%M", time.localtime(now + left))
        tail = f"about {duration(left)} left (ETA {eta})" if left else "done"
        self.say(f"seed-solo: epoch {where} in {duration(now - self.epoch_started)}"
                 + "".join(f"; {v}" for v in values) + f"; {tail}")
