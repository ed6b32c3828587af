"""Tiny image folders, written by the tests."""

from pathlib import Path

import numpy as np


def make_image_folders(root: Path, classes: int = 5, train_per_class: int = 8,
                       val_per_class: int = 4, size: int = 32, seed: int = 0,
                       suffix: str = ".png") -> Path:
    """train/ and val/ ImageFolders (PNG, or JPEG with ``suffix=".jpg"``, as DALI's ImageNet
    folders hold): class c is a noisy image of colour c's pattern."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            base = np.zeros((size, size, 3), dtype=np.float32)
            base[..., c % 3] = 200.0
            base[:: (c % 4) + 2, :, (c + 1) % 3] = 120.0
            for i in range(n):
                img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i}{suffix}")
    return root


def make_flat_folder(root: Path, images: int = 16, size: int = 32, seed: int = 0) -> Path:
    """A flat folder of ``images`` unlabelled PNGs (noise over a few colour patterns)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(images):
        base = np.zeros((size, size, 3), dtype=np.float32)
        base[..., i % 3] = 200.0
        img = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"img{i:03d}.png")
    return root
