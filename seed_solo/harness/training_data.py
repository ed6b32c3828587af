"""The data a distill run trains on, in each of its three forms, fitted the same way.

- image folders (or CIFAR, STL-10, h5): solo-learn's pretrain pipeline and loader;
- DALI: solo-learn's DALI data module (:mod:`seed_solo.data.dali`);
- a teacher cache: replayed views with their cached rows (:mod:`seed_solo.teacher_cache.views`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import torch
from omegaconf import DictConfig
from solo.utils.checkpointer import Checkpointer

from seed_solo.data.dali import check_device, pretrain_datamodule
from seed_solo.data.loaders import online_val_loader
from seed_solo.data.pretrain import pretrain_images, pretrain_loader, pretrain_transform
from seed_solo.data.unreadable import CheckedImages, SkippedImages
from seed_solo.harness.checkpointer import resuming
from seed_solo.teacher_cache.views import cached_train_loader


@dataclass
class TrainingData:
    """What :meth:`fit` hands Lightning: a train loader (or DALI's ``datamodule``), the labelled
    validation loader, and the image set whose unreadable images are reported."""

    train_loader: Any
    val_loader: Any
    datamodule: Any = None
    images: Optional[CheckedImages] = None

    def callbacks(self, run_callbacks: List[Any]) -> List[Any]:
        """What reports skipped images into the run folder of the run's checkpointer (one of
        ``run_callbacks``); none for DALI, which reads its images itself."""
        if self.images is None:
            return []
        checkpointer = next((c for c in run_callbacks if isinstance(c, Checkpointer)), None)
        return [SkippedImages(self.images, checkpointer)]

    def fit(self, trainer: Any, model: Any, ckpt_path: Optional[str]) -> None:
        with resuming(ckpt_path):
            if self.datamodule is not None:
                trainer.fit(model, ckpt_path=ckpt_path, datamodule=self.datamodule)
            else:
                trainer.fit(model, self.train_loader, self.val_loader, ckpt_path=ckpt_path)


def say_skipped_evaluations(cfg: DictConfig) -> None:
    """One line naming what a run without labelled validation images does not evaluate, and
    why, so that absent metrics are not mistaken for a fault."""
    why = ("the training images have no labels (data.no_labels)" if cfg.data.no_labels
           else "there is no labelled validation folder (data.val_path is unset)")
    train = "" if not cfg.data.no_labels else (
        "; the online classifier's training loss and accuracy are not logged either")
    print(f"seed-solo: {why}: online kNN and the online classifier's validation accuracy are "
          f"skipped{train}. Evaluate the student afterwards on a labelled folder (kNN, linear).")


def training_data(cfg: DictConfig) -> TrainingData:
    """The training data of the parsed distill config ``cfg``. A teacher cache is opened and
    checked against the run first, so a cache made for another run is refused before any
    model is built."""
    if cfg.get("method_kwargs", {}).get("teacher_cache"):
        loader, images = cached_train_loader(cfg)
        return TrainingData(loader, online_val_loader(cfg), images=images)
    dali = cfg.data.format == "dali"
    if dali:
        check_device(cfg, torch.cuda.is_available())
    transform = pretrain_transform(cfg, dali)
    if cfg.debug_augmentations:
        print("Transforms:", transform)
    val_loader = online_val_loader(cfg)
    if val_loader is None:
        say_skipped_evaluations(cfg)
    if dali:
        datamodule = pretrain_datamodule(cfg, transform)
        datamodule.val_dataloader = lambda: val_loader
        return TrainingData(None, val_loader, datamodule=datamodule)
    images = pretrain_images(cfg, transform)
    return TrainingData(pretrain_loader(cfg, images), val_loader, images=images)
