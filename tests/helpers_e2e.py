"""Shared test helpers: tiny image folders and the solo-learn gate."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SOLO_MISSING = importlib.util.find_spec("solo") is None
needs_solo = pytest.mark.skipif(
    SOLO_MISSING,
    reason="solo-learn 1.0.6 is not installed: `make setup` installs it (README, Quickstart)",
)
REPO = Path(__file__).resolve().parents[1]


def make_image_folders(root: Path, classes: int = 5, train_per_class: int = 8,
                       val_per_class: int = 4, size: int = 32, seed: int = 0) -> Path:
    """train/ and val/ ImageFolders of PNGs: class c is a noisy image of colour c's pattern."""
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
                Image.fromarray(img).save(folder / f"{i}.png")
    return root
