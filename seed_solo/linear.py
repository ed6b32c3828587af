"""Linear evaluation entry point on solo-learn's harness (its linear config schema).

    python -m seed_solo.linear --config-path configs/linear/imagenet --config-name seed_mbv3 \
        pretrained_feature_extractor=trained_models/seed/RUN/NAME-RUN-ep=199.ckpt

Only the student's ``backbone.*`` weights are read: evaluation never needs the teacher.
"""

from __future__ import annotations

import os

import torch
from omegaconf import DictConfig, OmegaConf

import seed_solo  # noqa: F401  (registers the students with solo-learn)
from seed_solo.atomic import write_json
from seed_solo.hydra_cli import run_hydra
from seed_solo.loaders import loaders_from_cfg
from seed_solo.rebuild import build_solo_backbone
from seed_solo.runs import find_checkpoint
from seed_solo.state_dict import load_prefixed, read_checkpoint
from seed_solo.trainer import (
    build_trainer,
    checkpoint_and_resume,
    devices_for_parse,
    require_epochs,
)


def _loss_and_mixup(cfg: DictConfig):
    from timm.data.mixup import Mixup
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    if cfg.mixup > 0 or cfg.cutmix > 0:
        mixup = Mixup(
            mixup_alpha=cfg.mixup,
            cutmix_alpha=cfg.cutmix,
            prob=1.0,
            switch_prob=0.5,
            mode="batch",
            label_smoothing=cfg.label_smoothing,
            num_classes=cfg.data.num_classes,
        )
        return SoftTargetCrossEntropy(), mixup
    if cfg.label_smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=cfg.label_smoothing), None
    return torch.nn.CrossEntropyLoss(), None


def run(cfg: DictConfig) -> dict:
    """Train a linear classifier on the frozen student backbone; returns the final metrics."""
    from lightning.pytorch import seed_everything
    from solo.args.linear import parse_cfg
    from solo.methods.linear import LinearModel
    from solo.utils.misc import make_contiguous

    OmegaConf.set_struct(cfg, False)
    given = str(cfg.get("pretrained_feature_extractor") or "")
    ckpt = str(find_checkpoint(given)) if given else ""
    if not os.path.isfile(ckpt):
        raise FileNotFoundError(
            f"pretrained_feature_extractor={given!r} is not a file; pass the student's .ckpt "
            "or its run folder (trained_models/<method>/<run>)."
        )
    require_epochs(cfg)
    devices = devices_for_parse(cfg)
    cfg = parse_cfg(cfg)
    seed_everything(cfg.seed)
    if cfg.data.format == "dali" and (
        cfg.get("accelerator") == "cpu" or not torch.cuda.is_available()
    ):
        raise ValueError("data.format=dali needs a GPU; use data.format=image_folder on a CPU.")

    backbone, _ = build_solo_backbone(
        cfg.backbone.name, cfg.backbone.kwargs, cfg.pretrain_method or "", cfg.data.dataset
    )
    state = read_checkpoint(ckpt, allow_inert_objects=True)["state_dict"]
    load_prefixed(backbone, state, "backbone.", "backbone")
    print(f"Loaded the student backbone from {ckpt}")

    loss_func, mixup = _loss_and_mixup(cfg)
    model = LinearModel(backbone, loss_func=loss_func, mixup_func=mixup, cfg=cfg)
    make_contiguous(model)
    if not cfg.performance.disable_channel_last:
        model = model.to(memory_format=torch.channels_last)

    aug = cfg.data.augmentations
    train_transform = None
    if cfg.auto_augment:
        from timm.data import create_transform

        train_transform = create_transform(
            input_size=aug.crop_size, is_training=True, auto_augment="rand-m9-mstd0.5-inc1",
            interpolation="bicubic", re_prob=0.25, re_mode="pixel", re_count=1,
            mean=aug.mean, std=aug.std,
        )
    train_loader, val_loader = loaders_from_cfg(
        cfg, aug.crop_size, aug.mean, aug.std, train_transform=train_transform
    )
    classes = getattr(train_loader.dataset, "classes", None)
    if classes is not None and len(classes) < 5:
        raise ValueError(
            f"linear evaluation reports top-5 accuracy (solo-learn's LinearModel), so it needs "
            f"at least 5 classes; {cfg.data.train_path} has {len(classes)}. Use kNN "
            "(seed_solo.knn) for fewer classes."
        )

    callbacks, ckpt_path = checkpoint_and_resume(cfg, "linear")
    trainer = build_trainer(cfg, callbacks, devices)
    if cfg.data.format == "dali":
        from solo.data.dali_dataloader import ClassificationDALIDataModule

        datamodule = ClassificationDALIDataModule(
            dataset=cfg.data.dataset,
            train_data_path=cfg.data.train_path,
            val_data_path=cfg.data.val_path,
            num_workers=cfg.data.num_workers,
            batch_size=cfg.optimizer.batch_size,
            data_fraction=cfg.data.fraction,
            dali_device=cfg.dali.device,
        )
        datamodule.val_dataloader = lambda: val_loader
        trainer.fit(model, ckpt_path=ckpt_path, datamodule=datamodule)
    else:
        trainer.fit(model, train_loader, val_loader, ckpt_path=ckpt_path)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    result = {"checkpoint": ckpt, "epochs": cfg.max_epochs, **metrics}
    write_json(cfg.get("output_json"), result)
    return result


HELP = """
usage: python -m seed_solo.linear --config-path DIR --config-name NAME [KEY=VALUE ...]

Trains a linear classifier on a frozen student backbone, from a hydra config in solo-learn's
linear schema. DIR may be relative to this folder. The teacher is never needed.

Configs (in a checkout): configs/linear/{imagenet,imagenet-100,cifar}/, one file per student;
scripts/linear/ wraps them.
Keys to set: pretrained_feature_extractor (the student's .ckpt, or its run folder: the last
checkpoint is taken), data.train_path, data.val_path.
Often changed: max_epochs, devices, accelerator (cpu), optimizer.batch_size, output_json.
"""


def main(cfg: DictConfig) -> None:
    result = run(cfg)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})


if __name__ == "__main__":
    run_hydra(main, HELP)
