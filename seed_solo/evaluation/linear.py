"""Linear evaluation: solo-learn's ``LinearModel`` on a frozen backbone, with its loss options.

The backbone's weights never change (solo-learn's ``LinearModel`` trains only its classifier
and runs the backbone under ``no_grad`` in eval mode); the loss follows the config's
``mixup``, ``cutmix`` and ``label_smoothing`` as solo-learn's main_linear does.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Tuple, Type

import torch
from omegaconf import DictConfig
from solo.methods.linear import LinearModel
from solo.utils.misc import make_contiguous
from timm.data import create_transform
from timm.data.mixup import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from seed_solo.core.errors import DataError, MissingFileError
from seed_solo.data.dali import check_device, classification_datamodule
from seed_solo.data.loaders import loaders_from_cfg
from seed_solo.harness.checkpointer import resuming
from seed_solo.runs.folders import find_checkpoint


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


def linear_model(backbone: nn.Module, cfg: DictConfig,
                 model_class: Type[LinearModel] = LinearModel) -> LinearModel:
    """solo-learn's ``LinearModel`` (or ``model_class``, a subclass) over ``backbone``, laid out
    as main_linear lays it out."""
    loss_func, mixup = loss_and_mixup(cfg)
    model = model_class(backbone, loss_func=loss_func, mixup_func=mixup, cfg=cfg)
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


def classification_loaders(cfg: DictConfig) -> Tuple[Any, Any]:
    """The training (:func:`train_transform`) and validation loaders of a parsed config in
    solo-learn's linear schema; DALI's device is checked first."""
    if cfg.data.format == "dali":
        check_device(cfg, torch.cuda.is_available())
    aug = cfg.data.augmentations
    return loaders_from_cfg(cfg, aug.crop_size, aug.mean, aug.std,
                            train_transform=train_transform(cfg))


def require_top5(classes: Any, path: Any) -> None:
    """solo-learn's ``LinearModel`` reports top-5 accuracy: fewer than 5 classes cannot run."""
    if classes is not None and len(classes) < 5:
        raise DataError(
            f"linear evaluation reports top-5 accuracy (solo-learn's LinearModel), so it needs "
            f"at least 5 classes; {path} has {len(classes)}. Use kNN (seed_solo.knn) for fewer "
            "classes."
        )


def student_checkpoint(cfg: DictConfig) -> str:
    """``pretrained_feature_extractor``: a checkpoint, or a run folder's last one."""
    given = str(cfg.get("pretrained_feature_extractor") or "")
    ckpt = str(find_checkpoint(given)) if given else ""
    if not os.path.isfile(ckpt):
        raise MissingFileError(
            f"pretrained_feature_extractor={given!r} is not a file; pass the student's .ckpt "
            "or its run folder (trained_models/<method>/<run>)."
        )
    return ckpt


def fit(trainer: Any, model: Any, cfg: DictConfig, train_loader: Any, val_loader: Any,
        ckpt_path: Optional[str],
        train_samples: Optional[Sequence[Tuple[str, int]]] = None) -> Dict[str, float]:
    """Train (from DALI's data module or the image-folder loader); the final metrics.

    ``train_samples`` (path, label): DALI trains on these images only (a fine-tuning label
    subset); the image-folder loader already serves only its own samples."""
    with resuming(ckpt_path):
        if cfg.data.format == "dali":
            datamodule = classification_datamodule(cfg, train_samples=train_samples)
            datamodule.val_dataloader = lambda: val_loader
            trainer.fit(model, ckpt_path=ckpt_path, datamodule=datamodule)
        else:
            trainer.fit(model, train_loader, val_loader, ckpt_path=ckpt_path)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
