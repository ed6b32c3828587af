"""Tiny data sets in the on-disk formats torchvision's downloads write, made by the tests:
CIFAR-10's python pickles and STL-10's binary files."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Tuple

import numpy as np


def class_images(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """(N, size, size, 3) uint8 images whose colour pattern tells class ``labels[i]`` apart."""
    rng = np.random.default_rng(seed)
    base = np.zeros((len(labels), size, size, 3), dtype=np.float32)
    for i, c in enumerate(labels):
        base[i, ..., c % 3] = 60 + 40 * (c // 3)
        base[i, :: (c % 4) + 2, :, (c + 1) % 3] = 150
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def write_cifar10(root: Path, train_per_class: int = 12, test_per_class: int = 6,
                  classes: int = 10, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``root/cifar-10-batches-py/`` with 5 training batches, a test batch and batches.meta, as
    torchvision's CIFAR10(root, download=True) leaves it. Returns (train, test) labels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_y = np.tile(np.arange(classes), train_per_class)
    test_y = np.tile(np.arange(classes), test_per_class)
    train_x, test_x = class_images(train_y, 32, seed), class_images(test_y, 32, seed + 1)

    def rows(x):  # CIFAR stores each image as 3072 bytes: R plane, G plane, B plane
        return x.transpose(0, 3, 1, 2).reshape(len(x), -1)

    for i, idx in enumerate(np.array_split(np.arange(len(train_y)), 5), start=1):
        batch = {b"data": rows(train_x[idx]), b"labels": train_y[idx].tolist()}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": rows(test_x),
                                                       b"labels": test_y.tolist()}))
    names = [f"class{c}".encode() for c in range(classes)]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    return train_y, test_y


def write_stl10(root: Path, train_per_class: int = 6, test_per_class: int = 4,
                seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``root/stl10_binary/`` with {train,test}_{X,y}.bin and class_names.txt in STL-10's own
    layout (96 px, channel-first, column-major; labels 1..10). Returns the (train, test)
    images as (N, 96, 96, 3) uint8, row-major, as they should read back."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for split, n, s in (("train", train_per_class, seed), ("test", test_per_class, seed + 1)):
        labels = np.tile(np.arange(10), n)
        images = class_images(labels, 96, s)
        images[:, :8, :16] = 255  # a corner that is not symmetric: a transposed read shows
        images.transpose(0, 3, 2, 1).astype(np.uint8).tofile(folder / f"{split}_X.bin")
        (labels + 1).astype(np.uint8).tofile(folder / f"{split}_y.bin")
        out.append(images)
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    return out[0], out[1]
