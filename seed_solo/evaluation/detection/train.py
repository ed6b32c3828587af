"""Training a detector: a Lightning module around torchvision's detector, with detectron2's
solver (what MoCo's detection configs use).

SGD, momentum 0.9, weight decay 1e-4 except on norm layers (detectron2's
``WEIGHT_DECAY_NORM: 0``); the lr ``base_lr x global batch / 16`` (detectron2's configs are
written for 16 images per step), a linear warm-up from ``warmup_factor x lr`` over
``warmup_iters`` steps, then x0.1 at each of ``steps``. The schedule is in iterations (steps of
the optimizer), as detectron2's ``MAX_ITER``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import torch
from lightning.pytorch import LightningModule
from torch import nn

#: the batch detectron2's solver settings are written for
REFERENCE_BATCH = 16


@dataclass(frozen=True)
class Schedule:
    """The solver (``schedule.*`` of the config): lengths in iterations."""

    iterations: int
    base_lr: float = 0.02
    steps: Tuple[int, ...] = ()
    warmup_iters: int = 100
    warmup_factor: float = 0.001
    gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4


def lr_factor(step: int, schedule: Schedule) -> float:
    """The lr multiplier after ``step`` optimizer steps: warm-up, then x gamma per milestone."""
    factor = schedule.gamma ** bisect_right(list(schedule.steps), step)
    if step < schedule.warmup_iters:
        alpha = step / schedule.warmup_iters
        factor *= schedule.warmup_factor * (1 - alpha) + alpha
    return factor


def param_groups(model: nn.Module, weight_decay: float) -> List[Dict[str, Any]]:
    """Trainable parameters, norm layers' without weight decay."""
    norm_types = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
    decay, no_decay = [], []
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if p.requires_grad:
                (no_decay if isinstance(module, norm_types) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


class DetectorTraining(LightningModule):
    """A torchvision detector trained on ``(images, targets)`` batches; logs each loss term.

    Args:
        batch_size: images per process per step (the global batch scales the lr).
    """

    def __init__(self, detector: nn.Module, schedule: Schedule, batch_size: int) -> None:
        super().__init__()
        self.detector = detector
        self.schedule = schedule
        self.batch_size = batch_size

    def training_step(self, batch: Tuple[Sequence[torch.Tensor], Sequence[Dict]], _: int):
        images, targets = batch
        losses = self.detector(list(images), list(targets))
        loss = sum(losses.values())
        self.log_dict({f"train_{k}": v.detach() for k, v in losses.items()}, on_step=False,
                      on_epoch=True, batch_size=len(images), sync_dist=True)
        self.log("train_loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=len(images), sync_dist=True)
        return loss

    def lr(self) -> float:
        world = self.trainer.world_size if self._trainer is not None else 1
        return self.schedule.base_lr * self.batch_size * world / REFERENCE_BATCH

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(param_groups(self.detector, self.schedule.weight_decay),
                                    lr=self.lr(), momentum=self.schedule.momentum)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, self.schedule))
        return [optimizer], [{"scheduler": scheduler, "interval": "step"}]
