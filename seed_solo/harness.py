"""Shared pieces of the entry points (distill, linear, knn) on solo-learn's harness.

solo-learn installs its ``solo`` package but not its ``main_*.py`` scripts; these helpers rebuild
what those scripts do from solo-learn's own modules, with three differences: everything runs on
a CPU too, custom data sets are evaluated at their training crop size (solo-learn's custom
evaluation pipeline is fixed at 224 px), and checkpoints load with their keys checked.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_checkpoint(path: os.PathLike | str) -> Dict[str, Any]:
    """Load a Lightning/torch checkpoint on the CPU with ``weights_only=True``.

    solo-learn checkpoints pickle ``functools.partial`` in their scheduler state, which
    ``weights_only`` refuses; such objects become inert placeholders (no code runs), tensors load.
    """
    from seed_solo.teachers.checkpoint import read_checkpoint

    return read_checkpoint(path, allow_inert_objects=True)


def build_backbone(name: str, kwargs: Dict[str, Any], method: Optional[str], dataset: str):
    """Build solo-learn backbone ``name`` exactly as solo's BaseMethod does: (module, features)."""
    from seed_solo.teachers.solo_ckpt import build_solo_backbone

    return build_solo_backbone(name, kwargs, method or "", dataset)


def load_prefixed(module: nn.Module, state: Dict[str, torch.Tensor], prefix: str, what: str):
    """Load the entries of ``state`` under ``prefix`` into ``module``, with every key checked.

    A wrong prefix would otherwise load nothing silently (solo-learn's main_linear loads with
    strict=False); here any missing or unexpected key is an error that names it.
    """
    from seed_solo.teachers.checkpoint import load_exact, strip_prefix

    sub = strip_prefix(state, prefix)
    if not sub:
        raise ValueError(
            f"no '{prefix}*' keys in the checkpoint for the {what}; found prefixes "
            f"{sorted({k.split('.')[0] for k in state})}. Is it a solo-learn/seed-solo checkpoint?"
        )
    load_exact(module, sub, what=what, source_key=lambda k: prefix + k)


def eval_transforms(crop_size: int, mean: Sequence[float], std: Sequence[float]):
    """(train, val) pipelines for linear/kNN evaluation at ``crop_size`` pixels."""
    normalize = transforms.Normalize(mean=list(mean), std=list(std))
    train = transforms.Compose(
        [
            transforms.RandomResizedCrop(crop_size, scale=(0.08, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalize,
        ]
    )
    val = transforms.Compose(
        [
            transforms.Resize(crop_size),
            transforms.CenterCrop(crop_size),
            transforms.ToTensor(),
            normalize,
        ]
    )
    return train, val


def classification_loaders(
    dataset: str,
    train_path: Any,
    val_path: Any,
    data_format: str = "image_folder",
    batch_size: int = 64,
    num_workers: int = 4,
    crop_size: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    train_transform: Any | None = None,
    shuffle_train: bool = True,
) -> Tuple[DataLoader, DataLoader]:
    """Labelled train/val loaders from solo-learn's datasets.

    solo-learn's own transforms are used for its named data sets; a ``custom`` data set with a
    ``crop_size`` gets :func:`eval_transforms` at that size instead of solo's fixed 224 px.
    """
    from solo.data.classification_dataloader import prepare_datasets, prepare_transforms

    if dataset == "custom" and crop_size:
        t_train, t_val = eval_transforms(crop_size, mean, std)
    else:
        t_train, t_val = prepare_transforms(dataset)
    if train_transform is not None:
        t_train = train_transform
    train_set, val_set = prepare_datasets(
        dataset,
        t_train,
        t_val,
        train_data_path=train_path,
        val_data_path=val_path,
        data_format=data_format,
    )
    pin = torch.cuda.is_available()
    train_loader = DataLoader(
        train_set,
        batch_size=batch_size,
        shuffle=shuffle_train,
        num_workers=num_workers,
        pin_memory=pin,
        drop_last=shuffle_train,
    )
    val_loader = DataLoader(
        val_set, batch_size=batch_size, num_workers=num_workers, pin_memory=pin, drop_last=False
    )
    return train_loader, val_loader


def loaders_from_cfg(
    cfg: DictConfig,
    crop_size: Optional[int],
    mean: Sequence[float],
    std: Sequence[float],
    train_transform: Optional[Any] = None,
) -> Tuple[DataLoader, DataLoader]:
    """:func:`classification_loaders` for ``cfg.data`` and ``cfg.optimizer.batch_size``.

    DALI runs build their labelled loaders from the image folders (as solo-learn does).
    """
    return classification_loaders(
        cfg.data.dataset,
        cfg.data.train_path,
        cfg.data.val_path,
        data_format="image_folder" if cfg.data.format == "dali" else cfg.data.format,
        batch_size=cfg.optimizer.batch_size,
        num_workers=cfg.data.num_workers,
        crop_size=crop_size,
        mean=mean,
        std=std,
        train_transform=train_transform,
    )


def devices_for_parse(cfg: DictConfig) -> Any:
    """solo-learn's parse_cfg scales the lr by ``len(cfg.devices)``: give it a list.

    Returns the user's original value, to hand to the Trainer afterwards.
    """
    original = cfg.get("devices", 1)
    if isinstance(original, int):
        cfg.devices = list(range(max(1, original)))
    elif isinstance(original, str):
        count = int(original) if original.isdigit() else len(original.split(","))
        cfg.devices = list(range(max(1, count)))
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
    """solo-learn's Checkpointer (+ metrics history) and the checkpoint to resume from."""
    from solo.utils.auto_resumer import AutoResumer
    from solo.utils.checkpointer import Checkpointer

    ckpt_path = None
    if cfg.auto_resume.enabled and cfg.resume_from_checkpoint is None:
        resumer = AutoResumer(
            checkpoint_dir=os.path.join(cfg.checkpoint.dir, subdir),
            max_hours=cfg.auto_resume.max_hours,
        )
        ckpt_path, _ = resumer.find_checkpoint(cfg)
        if ckpt_path is not None:
            print(f"Resuming from {ckpt_path}, a previous run with the same settings.")
    elif cfg.resume_from_checkpoint is not None:
        ckpt_path = cfg.resume_from_checkpoint
        del cfg.resume_from_checkpoint

    callbacks: List[Any] = []
    checkpointer = None
    if cfg.checkpoint.enabled:
        checkpointer = Checkpointer(
            cfg,
            logdir=os.path.join(cfg.checkpoint.dir, subdir),
            frequency=cfg.checkpoint.frequency,
            keep_prev=cfg.checkpoint.keep_prev,
        )
        callbacks.append(checkpointer)
    callbacks.append(MetricsHistory(checkpointer, cfg.get("metrics_dir")))
    return callbacks, (str(ckpt_path) if ckpt_path is not None else None)


def write_json(path: str | None, payload: Dict[str, Any]) -> None:
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)
