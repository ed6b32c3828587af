"""The training side of a distill run: solo-learn's augmentations and its image sets.

A live run reads images through solo-learn's pretrain pipeline (``FullTransformPipeline`` of
``NCropAugmentation``: every large crop, then every small one), from image folders, CIFAR,
STL-10 or h5 (:func:`pretrain_images`), or with DALI (:mod:`seed_solo.data.dali`). A run from a
teacher cache replays views instead (:mod:`seed_solo.teacher_cache.views`).
"""

from __future__ import annotations

from typing import Any, Callable

from omegaconf import DictConfig
from solo.data.pretrain_dataloader import (
    FullTransformPipeline,
    NCropAugmentation,
    build_transform_pipeline,
    prepare_dataloader,
    prepare_datasets,
)
from torch.utils.data import DataLoader

from seed_solo.data.dali import solo_dali
from seed_solo.data.unreadable import CheckedImages


def pretrain_transform(cfg: DictConfig, dali: bool = False) -> FullTransformPipeline:
    """solo-learn's multi-crop pipeline of ``cfg.augmentations`` (DALI's with ``dali``)."""
    if dali:
        build_dali = solo_dali().build_transform_pipeline_dali

        def build(aug: Any) -> Callable:
            return build_dali(cfg.data.dataset, aug, dali_device=cfg.dali.device)
    else:
        def build(aug: Any) -> Callable:
            return build_transform_pipeline(cfg.data.dataset, aug)

    return FullTransformPipeline([NCropAugmentation(build(a), a.num_crops)
                                  for a in cfg.augmentations])


def pretrain_images(cfg: DictConfig, transform: Callable) -> CheckedImages:
    """solo-learn's training set of ``cfg.data`` through ``transform``, unreadable images named
    or skipped (``data.on_corrupt``)."""
    images = prepare_datasets(
        cfg.data.dataset,
        transform,
        train_data_path=cfg.data.train_path,
        data_format=cfg.data.format,
        no_labels=cfg.data.no_labels,
        data_fraction=cfg.data.fraction,
    )
    return CheckedImages(images, cfg.data.get("on_corrupt", "error"))


def pretrain_loader(cfg: DictConfig, images: Any) -> DataLoader:
    """solo-learn's training loader (shuffled, whole batches) of ``images``."""
    return prepare_dataloader(images, batch_size=cfg.optimizer.batch_size,
                              num_workers=cfg.data.num_workers)
