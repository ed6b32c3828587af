"""Linear evaluation: solo-learn's ``LinearModel`` on a frozen backbone, with its loss options.

The backbone's weights never change (solo-learn's ``LinearModel`` trains only its classifier
and runs the backbone under ``no_grad`` in eval mode); the loss follows the config's
``mixup``, ``cutmix`` and ``label_smoothing`` as solo-learn's main_linear does.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from omegaconf import DictConfig
from solo.methods.linear import LinearModel
from solo.utils.misc import make_contiguous
from timm.data import create_transform
from timm.data.mixup import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from seed_solo.core.errors import DataError


def loss_and_mixup(cfg: DictConfig) -> Tuple[nn.Module, Optional[Mixup]]:
    """The classification loss and timm's batch mixup/cutmix, as solo-learn's main_linear."""
    if cfg.mixup > 0 or cfg.cutmix > 0:
        mixup = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, prob=1.0, switch_prob=0.5,
                      mode="batch", label_smoothing=cfg.label_smoothing,
                      num_classes=cfg.data.num_classes)
        return SoftTargetCrossEntropy(), mixup
    if cfg.label_smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=cfg.label_smoothing), None
    return torch.nn.CrossEntropyLoss(), None


def linear_model(backbone: nn.Module, cfg: DictConfig) -> LinearModel:
    """solo-learn's ``LinearModel`` over ``backbone``, laid out as main_linear lays it out."""
    loss_func, mixup = loss_and_mixup(cfg)
    model = LinearModel(backbone, loss_func=loss_func, mixup_func=mixup, cfg=cfg)
    make_contiguous(model)
    if not cfg.performance.disable_channel_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def train_transform(cfg: DictConfig) -> Any:
    """timm's RandAugment training pipeline with ``auto_augment``, else None (the default)."""
    if not cfg.auto_augment:
        return None
    aug = cfg.data.augmentations
    return create_transform(
        input_size=aug.crop_size, is_training=True, auto_augment="rand-m9-mstd0.5-inc1",
        interpolation="bicubic", re_prob=0.25, re_mode="pixel", re_count=1,
        mean=aug.mean, std=aug.std,
    )


def require_top5(classes: Any, path: Any) -> None:
    """solo-learn's ``LinearModel`` reports top-5 accuracy: fewer than 5 classes cannot run."""
    if classes is not None and len(classes) < 5:
        raise DataError(
            f"linear evaluation reports top-5 accuracy (solo-learn's LinearModel), so it needs "
            f"at least 5 classes; {path} has {len(classes)}. Use kNN (seed_solo.knn) for fewer "
            "classes."
        )
