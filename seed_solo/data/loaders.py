"""Labelled image loaders for evaluation (linear, kNN, online kNN) from solo-learn's data sets.

solo-learn's custom-data evaluation pipeline is fixed at 224 px; here a ``custom`` data set is
evaluated at its training crop size instead.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import torch
from omegaconf import DictConfig
from solo.data.classification_dataloader import prepare_datasets, prepare_transforms
from torch.utils.data import DataLoader
from torchvision import transforms

from seed_solo.data.unreadable import CheckedImages
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD


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
    train_set, val_set = CheckedImages(train_set), CheckedImages(val_set)
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


def online_val_loader(cfg: DictConfig) -> Optional[DataLoader]:
    """The labelled validation loader of a distill run (for the online kNN and the online
    classifier), at the first augmentation's crop size; None without labelled validation data."""
    if cfg.data.val_path is None or (cfg.data.dataset == "custom" and cfg.data.no_labels):
        return None
    aug = cfg.augmentations[0]
    _, val_loader = loaders_from_cfg(cfg, aug.crop_size,
                                     mean=aug.get("mean", None) or IMAGENET_MEAN,
                                     std=aug.get("std", None) or IMAGENET_STD)
    return val_loader
