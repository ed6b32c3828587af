"""Pre-training / distillation entry point on solo-learn's harness.

    python -m seed_solo.distill --config-path configs/distill/imagenet --config-name seed_mbv3 \
        data.train_path=/data/imagenet/train method_kwargs.teacher=mocov2-r50-800ep

Takes solo-learn's pretrain config schema and runs ``method=seed`` or any solo-learn method,
on GPUs (DDP, DALI) or on a CPU (``accelerator=cpu devices=1``; DALI with ``dali.device=cpu``).
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

import seed_solo  # noqa: F401  (registers SEED and the students with solo-learn)
from seed_solo.dali import check_device, pretrain_datamodule, solo_dali
from seed_solo.hydra_cli import run_hydra
from seed_solo.images import CheckedImages, SkippedImages
from seed_solo.loaders import loaders_from_cfg
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD
from seed_solo.trainer import (
    build_trainer,
    checkpoint_and_resume,
    devices_for_parse,
    require_epochs,
)

# solo-learn's main_pretrain insists on 2 large crops except for these methods
ANY_CROPS = ("seed", "wmse", "mae")


def _val_loader(cfg: DictConfig):
    if cfg.data.val_path is None or (cfg.data.dataset == "custom" and cfg.data.no_labels):
        return None
    aug = cfg.augmentations[0]
    _, val_loader = loaders_from_cfg(
        cfg,
        aug.crop_size,
        mean=aug.get("mean", None) or IMAGENET_MEAN,
        std=aug.get("std", None) or IMAGENET_STD,
    )
    return val_loader


def _pretrain_transform(cfg: DictConfig, dali: bool):
    from solo.data.pretrain_dataloader import FullTransformPipeline, NCropAugmentation

    if dali:
        build_transform_pipeline_dali = solo_dali().build_transform_pipeline_dali

        def build(aug):
            return build_transform_pipeline_dali(cfg.data.dataset, aug, dali_device=cfg.dali.device)
    else:
        from solo.data.pretrain_dataloader import build_transform_pipeline

        def build(aug):
            return build_transform_pipeline(cfg.data.dataset, aug)

    pipelines = [NCropAugmentation(build(a), a.num_crops) for a in cfg.augmentations]
    return FullTransformPipeline(pipelines)


def run(cfg: DictConfig) -> None:
    """Parse ``cfg`` as solo-learn's main_pretrain does, build the method, fit."""
    from lightning.pytorch import seed_everything
    from solo.args.pretrain import parse_cfg
    from solo.methods import METHODS
    from solo.utils.misc import make_contiguous

    OmegaConf.set_struct(cfg, False)
    require_epochs(cfg)
    devices = devices_for_parse(cfg)
    cfg = parse_cfg(cfg)
    seed_everything(cfg.seed)

    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; choose from {sorted(METHODS)}.")
    if cfg.data.num_large_crops != 2 and cfg.method not in ANY_CROPS:
        raise ValueError(
            f"{cfg.method} needs 2 large crops, the augmentations give "
            f"{cfg.data.num_large_crops}; set num_crops: 2 in the first augmentation."
        )
    cached = bool(cfg.get("method_kwargs", {}).get("teacher_cache"))
    if cached:  # the data first: a cache made for another run is refused before any model
        from seed_solo.views import cached_train_loader

        train_loader, train_set = cached_train_loader(cfg)
    dali = cfg.data.format == "dali"
    if dali:
        check_device(cfg, torch.cuda.is_available())

    model = METHODS[cfg.method](cfg)
    make_contiguous(model)
    if not cfg.performance.disable_channel_last:
        model = model.to(memory_format=torch.channels_last)

    val_loader = _val_loader(cfg)
    transform = None if cached else _pretrain_transform(cfg, dali)
    if cfg.debug_augmentations:
        print("Transforms:", train_loader.dataset.transform if cached else transform)

    datamodule = None
    if dali:
        datamodule = pretrain_datamodule(cfg, transform)
        datamodule.val_dataloader = lambda: val_loader
    elif not cached:
        from solo.data.pretrain_dataloader import prepare_dataloader, prepare_datasets

        train_set = prepare_datasets(
            cfg.data.dataset,
            transform,
            train_data_path=cfg.data.train_path,
            data_format=cfg.data.format,
            no_labels=cfg.data.no_labels,
            data_fraction=cfg.data.fraction,
        )
        train_set = CheckedImages(train_set, cfg.data.get("on_corrupt", "error"))
        train_loader = prepare_dataloader(
            train_set, batch_size=cfg.optimizer.batch_size, num_workers=cfg.data.num_workers
        )

    callbacks, ckpt_path = checkpoint_and_resume(cfg, cfg.method)
    if not dali:
        from solo.utils.checkpointer import Checkpointer

        checkpointer = next((c for c in callbacks if isinstance(c, Checkpointer)), None)
        callbacks.append(SkippedImages(train_set, checkpointer))
    trainer = build_trainer(cfg, callbacks, devices)
    if dali:
        trainer.fit(model, ckpt_path=ckpt_path, datamodule=datamodule)
    else:
        trainer.fit(model, train_loader, val_loader, ckpt_path=ckpt_path)


HELP = """
usage: python -m seed_solo.distill --config-path DIR --config-name NAME [KEY=VALUE ...]

Distils a frozen teacher into a student (method=seed), or pretrains with any solo-learn method,
from a hydra config in solo-learn's pretrain schema. DIR may be relative to this folder.

Configs (in a checkout): configs/distill/{imagenet,imagenet-100,cifar}/, one file per student
(seed_mbv3, seed_effb0, seed_r18, seed_r34); scripts/distill/ wraps them.
Keys to set: data.train_path, data.val_path, method_kwargs.teacher (a zoo name from
`seed-solo zoo list`, a checkpoint path or url, or torchvision:NAME / timm:NAME).
Often changed: max_epochs, devices, accelerator (cpu), optimizer.batch_size, data.format
(dali | image_folder), dali.device (gpu | cpu: DALI without a GPU), checkpoint.dir. Any other
key of the config as KEY=VALUE; a key the config lacks as +KEY=VALUE.
"""


def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    run_hydra(main, HELP)
