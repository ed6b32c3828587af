"""Shared by the teacher-cache tests: a tiny teacher file and configs for the cache pass."""

from pathlib import Path

from tests.support import commands
from tests.support.commands import REPO

TEACHER_FORMAT = "timm:test_resnet"  # 0.37M parameters, d = 96
#: the CPU overrides of a tiny cached run (and of its live twin)
CPU = [*commands.CPU, "optimizer.batch_size=8", "augmentations.0.crop_size=32",
       "method_kwargs.queue_size=64", "knn_eval.enabled=False",
       "+performance.disable_channel_last=True"]


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
    """The raw distill config (before solo-learn's parse), as the commands get it."""
    from seed_solo.harness.config import compose_config

    return compose_config(REPO / "configs/distill/imagenet", "seed_r18",
                          overrides(data, teacher, *extra))


def parsed(data: Path, teacher: Path, *extra: str):
    """The config after solo-learn's parse, as a SEED model gets it."""
    from seed_solo.harness.pretrain import parse_pretrain

    return parse_pretrain(compose(data, teacher, *extra))[0]


def build_cache(data: Path, teacher: Path, path: Path, *settings: str, views: int = 2):
    """Run the cache pass in this process (``seed_solo.cache``) into ``path``."""
    from seed_solo.harness.cache_pass import run

    run(compose(data, teacher, f"+cache.path={path}", f"+cache.views={views}",
                "+cache.chunk_images=16", *settings))
    return path
