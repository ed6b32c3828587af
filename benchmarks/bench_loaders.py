"""Images/s of the DALI CPU pipeline against the torchvision image-folder pipeline, side by side.

Both are the pretrain loaders seed-solo's distill builds from the same augmentation config
(default: the ImageNet MoCo v2 one, one view per image, colour jitter, grey, blur, flip), fed
the same folder of JPEGs of ImageNet's typical size (500 x 375), at each crop size:

    python -m benchmarks.bench_loaders                       # 64, 112, 224 px, 2 workers
    python -m benchmarks.bench_loaders --sizes 224 --workers 8 --images 512

torchvision: solo-learn's ``prepare_datasets`` + ``prepare_dataloader`` with ``--workers``
processes. DALI: solo-learn's ``PretrainDALIDataModule`` through :mod:`seed_solo.data.dali` with
``dali.device=cpu`` and ``--workers`` threads. Each is timed over whole passes after one warm-up
pass; the figure is images out of the loader per second of wall time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
AUGS = REPO / "configs/distill/imagenet/augmentations/mocov2.yaml"


def make_jpegs(root: Path, images: int, classes: int = 4, seed: int = 0) -> Path:
    """``images`` 500 x 375 JPEGs (quality 90) of smooth random colour fields with fine noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(images):
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.uniform(0, 255, (12, 16, 3)).astype(np.uint8)
        field = np.asarray(Image.fromarray(coarse).resize((500, 375), Image.BICUBIC), np.float32)
        img = np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i}.jpg", quality=90)
    return root


def cfg_for(data: Path, size: int, workers: int, batch: int, fmt: str):
    augs = OmegaConf.load(AUGS)
    for aug in augs:
        aug.crop_size = size
    return OmegaConf.create({
        "data": {"dataset": "custom", "train_path": str(data), "format": fmt,
                 "num_workers": workers, "no_labels": False, "fraction": -1.0,
                 "num_large_crops": 1, "num_small_crops": 0},
        "dali": {"device": "cpu", "encode_indexes_into_labels": False},
        "optimizer": {"batch_size": batch},
        "augmentations": augs,
    })


def torchvision_loader(cfg):
    from solo.data.pretrain_dataloader import prepare_dataloader, prepare_datasets

    from seed_solo.distill import _pretrain_transform

    data = prepare_datasets("custom", _pretrain_transform(cfg, False),
                            train_data_path=cfg.data.train_path)
    return prepare_dataloader(data, batch_size=cfg.optimizer.batch_size,
                              num_workers=cfg.data.num_workers)


def dali_loader(cfg):
    from lightning.pytorch import Trainer

    from seed_solo.data.dali import pretrain_datamodule
    from seed_solo.distill import _pretrain_transform

    module = pretrain_datamodule(cfg, _pretrain_transform(cfg, True))
    module.trainer = Trainer(accelerator="cpu", devices=1, logger=False)
    module.setup("fit")
    return module.train_dataloader()


def images_per_s(loader, passes: int, size: int) -> float:
    """Images/s over ``passes`` whole passes, after one warm-up pass."""
    for batch in loader:  # warm-up: workers started, files in the page cache
        assert batch[1][0].shape[-1] == size
    seen, start = 0, time.perf_counter()
    for _ in range(passes):
        for batch in loader:
            seen += batch[1][0].shape[0]
    return seen / (time.perf_counter() - start)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 112, 224])
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="loader processes / DALI threads")
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--data", type=Path, help="an image folder of JPEGs (default: generated)")
    args = p.parse_args(argv)

    import logging

    import torch

    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)  # no Trainer banner per loader
    torch.set_num_threads(1)  # the loaders' own workers do the work, as in a training run
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or make_jpegs(Path(tmp), args.images)
        print(f"{args.images if not args.data else 'given'} JPEGs in {data}, batch {args.batch}, "
              f"{args.workers} workers, MoCo v2 augmentations, {args.passes} timed passes")
        print("| crop (px) | torchvision img/s | DALI CPU img/s | DALI / torchvision |")
        print("|---|---|---|---|")
        for size in args.sizes:
            tv = images_per_s(torchvision_loader(
                cfg_for(data, size, args.workers, args.batch, "image_folder")), args.passes, size)
            dali = images_per_s(dali_loader(
                cfg_for(data, size, args.workers, args.batch, "dali")), args.passes, size)
            print(f"| {size} | {tv:.0f} | {dali:.0f} | {dali / tv:.2f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
