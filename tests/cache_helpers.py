"""Shared by the teacher-cache tests: a tiny teacher file and configs for the cache pass."""

from pathlib import Path

from helpers_e2e import REPO

TEACHER_FORMAT = "timm:test_resnet"  # 0.37M parameters, d = 96
CPU = [
    "data.dataset=custom", "data.format=image_folder", "data.num_workers=0",
    "accelerator=cpu", "devices=1", "strategy=null", "sync_batchnorm=False", "precision=32",
    "+enable_progress_bar=False", "optimizer.batch_size=8", "augmentations.0.crop_size=32",
    "method_kwargs.queue_size=64", "knn_eval.enabled=False",
    "+performance.disable_channel_last=True",
]


def save_teacher(path: Path, seed: int = 0) -> Path:
    """A timm ``test_resnet`` state dict at ``path`` (a teacher file of format TEACHER_FORMAT)."""
    import timm
    import torch

    torch.manual_seed(seed)
    torch.save(timm.create_model("test_resnet", num_classes=0).state_dict(), path)
    return path


def overrides(data: Path, teacher: Path, *extra: str):
    return [*CPU, f"data.train_path={data}/train", f"data.val_path={data}/val",
            f"method_kwargs.teacher={teacher}", f"method_kwargs.teacher_format={TEACHER_FORMAT}",
            *extra]


def compose(data: Path, teacher: Path, *extra: str):
    """The raw distill config (before solo-learn's parse), as the entry points get it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(REPO / "configs/distill/imagenet"), version_base="1.2"):
        cfg = hydra_compose("seed_r18", overrides=overrides(data, teacher, *extra))
    OmegaConf.set_struct(cfg, False)
    return cfg


def parsed(data: Path, teacher: Path, *extra: str):
    """The config after solo-learn's parse, as a SEED model gets it."""
    from solo.args.pretrain import parse_cfg

    from seed_solo.trainer import devices_for_parse

    cfg = compose(data, teacher, *extra)
    devices_for_parse(cfg)
    return parse_cfg(cfg)


def build_cache(data: Path, teacher: Path, path: Path, *settings: str, views: int = 2):
    """Run the cache pass in this process (``seed_solo.cache.run``) into ``path``."""
    from seed_solo.cache import run

    run(compose(data, teacher, f"+cache.path={path}", f"+cache.views={views}",
                "+cache.chunk_images=16", *settings))
    return path
