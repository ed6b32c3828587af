"""Fashion-MNIST as RGB image folders.

The IDX gzips come from the first of: ``$FASHION_MNIST_DIR``; the Debian package
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``); torchvision's
``FashionMNIST(download=True)`` into seed-solo's download folder (machines with internet).

The IDX files (28x28 grey, 60,000 train + 10,000 test) are read once and written as PNGs,
zero-padded to 32x32 (Fashion-MNIST's background is black, so padding adds no edges) and
replicated to 3 channels, into ``train/``, ``heldout/``, ``val/`` and ``val_online/`` folders
whose class folders (``0_t-shirt`` .. ``9_ankle-boot``) sort in label order, as solo-learn's
``custom`` data set (torchvision ImageFolder) expects.

- ``train``: a class-balanced subset of the training set, what every model trains on.
- ``heldout``: other training images, disjoint from ``train``, for choices such as the
  teacher's layer; never the test set.
- ``val``: a class-balanced subset of the test set for the final kNN and linear evaluation.
- ``val_online``: a smaller class-balanced subset of ``val`` for the per-epoch online kNN.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import numpy as np
from PIL import Image
from torchvision.datasets import FashionMNIST

from seed_solo.core.errors import DataError, MissingFileError
from seed_solo.teachers.download import download_dir

ENV_DIR = "FASHION_MNIST_DIR"
DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle-boot")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IMAGE_SIZE = 32


@dataclass(frozen=True)
class Split:
    """Images per class of each folder; ``val`` and ``val_online`` come from the test set."""

    train: int
    heldout: int
    val: int
    val_online: int
    seed: int = 0


def _missing(path: Path) -> list:
    return [f for pair in FILES.values() for f in pair if not (path / f).is_file()]


def torchvision_dir() -> Path:
    """Where torchvision's download puts the gzips: ``<download folder>/fashion-mnist/
    FashionMNIST/raw``."""
    return download_dir() / "fashion-mnist" / "FashionMNIST" / "raw"


def download(dataset_cls: Any = None) -> Path:
    """Download Fashion-MNIST with torchvision (``dataset_cls``, default ``FashionMNIST``)."""
    dataset_cls = dataset_cls or FashionMNIST
    dataset_cls(str(torchvision_dir().parents[1]), download=True)  # fetches train and test files
    return torchvision_dir()


def source_dir(allow_download: bool = True, debian_dir: Union[str, Path] = DEFAULT_DIR,
               dataset_cls: Any = None) -> Path:
    """The folder of the four IDX gzips; see the module docstring for the order tried.

    Args:
        allow_download: try torchvision's download when no folder has the files.
        debian_dir: where Debian's package puts them.
        dataset_cls: the torchvision data set class that downloads (``FashionMNIST``).

    Raises:
        FileNotFoundError: ``$FASHION_MNIST_DIR`` lacks a file, or no source had the data and
            the download failed; the message says how to supply it.
    """
    if os.environ.get(ENV_DIR):
        path = Path(os.environ[ENV_DIR])
        if _missing(path):
            raise MissingFileError(
                f"{ENV_DIR}={path} lacks {', '.join(_missing(path))}; point it at a folder "
                "holding the four Fashion-MNIST *-ubyte.gz files, or unset it to use Debian's "
                "`apt-get install dataset-fashion-mnist` or a torchvision download."
            )
        return path
    for path in (Path(debian_dir), torchvision_dir()):
        if not _missing(path):
            return path
    if not allow_download:
        raise MissingFileError(
            f"Fashion-MNIST is in neither {ENV_DIR}, {debian_dir} nor {torchvision_dir()}; "
            "`apt-get install dataset-fashion-mnist` (as root) or a run with internet gets it."
        )
    try:
        return download(dataset_cls)
    except Exception as err:  # no network, a proxy, a full disk: all end the same way
        raise MissingFileError(
            f"Fashion-MNIST was found neither in {ENV_DIR} nor in {debian_dir} nor in "
            f"{torchvision_dir()}, and torchvision could not download it ({err}); install it with "
            "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu, as root), or set "
            f"{ENV_DIR} to a folder holding the four *-ubyte.gz files."
        ) from err


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped) as a uint8 array: (N, 28, 28) images or (N,) labels."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned byte
        raise DataError(f"{path} is not an unsigned-byte IDX file (magic {magic:#x}).")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(split: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) uint8) of ``train`` or ``test``."""
    images, labels = FILES[split]
    root = source_dir()
    return read_idx(root / images), read_idx(root / labels)


def balanced_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator,
                     exclude: np.ndarray | None = None) -> np.ndarray:
    """``per_class`` random indices of each class, none of them in ``exclude``."""
    taken = np.zeros(len(labels), dtype=bool)
    if exclude is not None:
        taken[exclude] = True
    chosen = []
    for c in range(len(CLASSES)):
        pool = np.flatnonzero((labels == c) & ~taken)
        if len(pool) < per_class:
            raise DataError(f"class {c} has {len(pool)} images left, {per_class} asked for.")
        chosen.append(rng.choice(pool, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def _write_folder(root: Path, images: np.ndarray, labels: np.ndarray, indices: np.ndarray):
    pad = (IMAGE_SIZE - images.shape[1]) // 2
    for c, name in enumerate(CLASSES):
        (root / f"{c}_{name}").mkdir(parents=True, exist_ok=True)
    for i in indices:
        grey = np.pad(images[i], pad)
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
        c = int(labels[i])
        Image.fromarray(rgb).save(root / f"{c}_{CLASSES[c]}" / f"{i:05d}.png")


def prepare(out_dir: os.PathLike, split: Split) -> Dict[str, Path]:
    """Write the four folders under ``out_dir`` once; later calls with the same ``split`` reuse
    them. Returns ``{folder name: path}``.

    A ``done.json`` recording ``split`` is written last, so an interrupted preparation is
    redone from scratch and a changed ``split`` rewrites the folders.
    """
    out_dir = Path(out_dir)
    names = ("train", "heldout", "val", "val_online")
    paths = {n: out_dir / n for n in names}
    marker = out_dir / "done.json"
    if marker.is_file() and json.loads(marker.read_text()) == asdict(split):
        return paths
    for p in paths.values():
        shutil.rmtree(p, ignore_errors=True)
    marker.unlink(missing_ok=True)
    rng = np.random.default_rng(split.seed)
    x_train, y_train = load("train")
    x_test, y_test = load("test")
    train = balanced_indices(y_train, split.train, rng)
    heldout = balanced_indices(y_train, split.heldout, rng, exclude=train)
    val = balanced_indices(y_test, split.val, rng)
    val_online = val[balanced_indices(y_test[val], split.val_online, rng)]
    _write_folder(paths["train"], x_train, y_train, train)
    _write_folder(paths["heldout"], x_train, y_train, heldout)
    _write_folder(paths["val"], x_test, y_test, val)
    _write_folder(paths["val_online"], x_test, y_test, val_online)
    marker.write_text(json.dumps(asdict(split)))
    return paths
