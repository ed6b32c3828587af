"""A SEED model as ``seed_solo.distill`` builds it from the ImageNet ResNet-18 config, at tiny
sizes, and a few real training steps of it."""

from __future__ import annotations

from tests.support.commands import REPO

TINY = [
    "data.dataset=custom", "data.format=image_folder", "data.num_workers=0",
    "optimizer.batch_size=8", "augmentations.0.crop_size=32", "method_kwargs.queue_size=64",
    "+performance.disable_channel_last=True",
]


def make_cfg(data, *overrides, teacher="torchvision:resnet18", config="seed_r18"):
    """The parsed config of a distill run on ``data`` (the ``train``/``val`` folders), from the
    ImageNet config ``config`` (an objective's: ``l2_r18``...)."""
    from seed_solo.harness.config import compose_config
    from seed_solo.harness.pretrain import parse_pretrain

    cfg = compose_config(REPO / "configs/distill/imagenet", config, [
        *TINY, f"data.train_path={data}/train", f"data.val_path={data}/val",
        f"method_kwargs.teacher={teacher}", "devices=1", *overrides])
    return parse_pretrain(cfg, check=False)[0]


def fit_steps(model, cfg, steps):
    """A few real solo-learn pipeline steps of ``model`` under a Lightning Trainer, on CPU."""
    from lightning.pytorch import Trainer

    from seed_solo.data.pretrain import pretrain_images, pretrain_loader, pretrain_transform

    loader = pretrain_loader(cfg, pretrain_images(cfg, pretrain_transform(cfg)))
    trainer = Trainer(accelerator="cpu", devices=1, max_steps=steps, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)
    trainer.fit(model, loader)
