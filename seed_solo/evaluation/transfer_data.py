"""The data sets of transfer classification, read from the user's own copy on disk.

A data set is given as ``NAME=PATH``:

- ``cifar10``, ``cifar100``: torchvision's on-disk layout (``PATH/cifar-10-batches-py/`` or
  ``PATH/cifar-100-python/``, the pickles ``CIFAR10(PATH, download=True)`` writes; PATH may also
  be that folder itself);
- ``stl10``: ``PATH/stl10_binary/`` (``train_X.bin``, ``train_y.bin``, ``test_X.bin``,
  ``test_y.bin``, ``class_names.txt``), 96 px images; the 100,000 unlabelled images are unused;
- ``food101``, ``flowers102``, ``pets``, ``dtd``, ``aircraft``, ``cars``, ``caltech101``,
  ``sun397``: torchvision's readers of the transfer suite of Kornblith et al. (2019), PATH being
  the ``root`` torchvision reads them from (nothing is downloaded);
- any other name: an image folder with ``train/`` and ``test/`` (and optionally ``val/``), or
  ``train/`` and ``val/`` (then ``val/`` is the test split).

CIFAR and STL-10 are read from their files here rather than through torchvision's classes,
which first compare each file with the md5 of the published archive and refuse any other copy
in the same layout.

Splits (:class:`Splits`): the published train, validation and test splits where the data set
has them (Flowers-102, DTD partition 1, Aircraft); where it has none, the validation split that
chooses the regularisation is held out of the training split later, on the features
(:func:`seed_solo.evaluation.logistic.holdout`). Caltech-101 and SUN397 have no published split
in torchvision: 30 (Caltech-101) or 50 (SUN397) images per class are drawn for training by the
seeded rule of :func:`seeded_split`, the rest (SUN397: 50 per class) are the test split.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import datasets

from seed_solo.core.errors import DataError, MissingFileError
from seed_solo.evaluation.subsets import check_image_folder, check_same_classes


class ArrayImages(Dataset):
    """Images held in memory: ``images`` (N, H, W, 3) uint8, ``labels`` (N,), PIL out."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                 transform: Optional[Callable] = None) -> None:
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)
        self.classes, self.transform = list(classes), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Tuple[Any, int]:
        image = Image.fromarray(self.images[index])
        return (self.transform(image) if self.transform else image), int(self.labels[index])


@dataclass
class Splits:
    """A data set's splits to extract features of. ``parts`` maps a split name (``train``,
    ``val``, ``test``, or ``all`` for a data set split later by :func:`seeded_split`) to its
    data set, whose items are (transformed image, class index)."""

    name: str
    path: str
    parts: Dict[str, Dataset]
    classes: List[str]
    #: for ``all``: training images per class (the rest are the test split)
    train_per_class: Optional[int] = None
    #: for ``all``: test images per class (None: all the others)
    test_per_class: Optional[int] = None
    notes: List[str] = field(default_factory=list)


def _unpickle(path: Path) -> Dict[bytes, Any]:
    if not path.is_file():
        raise MissingFileError(f"{path} is missing; a CIFAR folder in torchvision's layout holds "
                               "it (CIFAR10(root, download=True) writes it).")
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except Exception as err:  # a truncated or foreign file: named, whatever unpickling raised
        raise DataError(f"{path} is not a CIFAR pickle ({err}); replace it with the file of "
                        "torchvision's download.") from None


def _cifar_images(batch: Dict[bytes, Any], path: Path) -> np.ndarray:
    data = np.asarray(batch.get(b"data"))
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: 'data' is {data.shape}, expected (N, 3072) CIFAR rows.")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def cifar(name: str, path: Path, transform: Callable) -> Splits:
    """CIFAR-10 (``cifar10``) or CIFAR-100 (``cifar100``, fine labels) from torchvision's files."""
    folder_name = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    folder = path if path.name == folder_name else path / folder_name
    if not folder.is_dir():
        raise MissingFileError(f"{name}={path}: no {folder_name}/ folder there; give the folder "
                               f"torchvision's download wrote (the one holding {folder_name}/).")
    if name == "cifar10":
        train_files, test_files = [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]
        meta, names_key, labels_key = "batches.meta", b"label_names", b"labels"
    else:
        train_files, test_files = ["train"], ["test"]
        meta, names_key, labels_key = "meta", b"fine_label_names", b"fine_labels"
    classes = [c.decode() for c in _unpickle(folder / meta)[names_key]]
    parts = {}
    for split, files in (("train", train_files), ("test", test_files)):
        batches = [(_unpickle(folder / f), folder / f) for f in files]
        images = np.concatenate([_cifar_images(b, p) for b, p in batches])
        labels = np.concatenate([np.asarray(b[labels_key]) for b, _ in batches])
        parts[split] = ArrayImages(images, labels, classes, transform)
    return Splits(name, str(path), parts, classes)


def stl10(path: Path, transform: Callable) -> Splits:
    """STL-10's labelled train (5,000) and test (8,000) images from ``stl10_binary/``."""
    folder = path if path.name == "stl10_binary" else path / "stl10_binary"
    names = folder / "class_names.txt"
    if not names.is_file():
        raise MissingFileError(f"stl10={path}: {names} is missing; give the folder holding "
                               "stl10_binary/ (torchvision's STL10 download layout).")
    classes = [c.strip() for c in names.read_text().splitlines() if c.strip()]
    parts = {}
    for split in ("train", "test"):
        x_file, y_file = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
        for f in (x_file, y_file):
            if not f.is_file():
                raise MissingFileError(f"stl10={path}: {f} is missing.")
        images = np.fromfile(x_file, dtype=np.uint8)
        labels = np.fromfile(y_file, dtype=np.uint8).astype(np.int64) - 1  # stored as 1..10
        if images.size != len(labels) * 3 * 96 * 96:
            raise DataError(f"{x_file} holds {images.size} bytes, not {len(labels)} 96x96x3 "
                            f"images as {y_file} says; replace both with the published files.")
        # stored channel-first, column-major: (N, 3, W, H) -> (N, H, W, 3), as torchvision's
        images = images.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)
        parts[split] = ArrayImages(images, labels, classes, transform)
    return Splits("stl10", str(path), parts, classes)


def image_folders(name: str, path: Path, transform: Callable) -> Splits:
    """``train/`` + ``test/`` (+ ``val/``), or ``train/`` + ``val/`` (then the test split)."""
    has = {s: (path / s).is_dir() for s in ("train", "val", "test")}
    if not has["train"] or not (has["val"] or has["test"]):
        raise MissingFileError(
            f"{name}={path}: expected an image folder with train/ and test/ (or val/) inside, "
            f"or one of the named data sets ({', '.join(READERS)})."
        )
    roles = {"train": "train", "test": "test" if has["test"] else "val"}
    if has["test"] and has["val"]:
        roles["val"] = "val"
    classes = check_image_folder(path / "train")
    parts = {}
    for role, folder in roles.items():
        check_same_classes(classes, check_image_folder(path / folder), path / "train",
                           path / folder)
        parts[role] = datasets.ImageFolder(str(path / folder), transform=transform)
    return Splits(name, str(path), parts, classes)


def _rgb(transform: Callable) -> Callable:
    return lambda image: transform(image.convert("RGB"))


#: the torchvision readers of the transfer suite: (class, {split: kwargs}, extra kwargs)
SUITE: Dict[str, Tuple[Any, Dict[str, Dict[str, Any]], Dict[str, Any]]] = {
    "food101": (datasets.Food101, {"train": {"split": "train"}, "test": {"split": "test"}}, {}),
    "flowers102": (datasets.Flowers102, {"train": {"split": "train"}, "val": {"split": "val"},
                                         "test": {"split": "test"}}, {}),
    "pets": (datasets.OxfordIIITPet, {"train": {"split": "trainval"},
                                      "test": {"split": "test"}}, {}),
    "dtd": (datasets.DTD, {"train": {"split": "train"}, "val": {"split": "val"},
                           "test": {"split": "test"}}, {"partition": 1}),
    "aircraft": (datasets.FGVCAircraft, {"train": {"split": "train"}, "val": {"split": "val"},
                                         "test": {"split": "test"}},
                 {"annotation_level": "variant"}),
    "cars": (datasets.StanfordCars, {"train": {"split": "train"}, "test": {"split": "test"}}, {}),
    "caltech101": (datasets.Caltech101, {"all": {}}, {"target_type": "category"}),
    "sun397": (datasets.SUN397, {"all": {}}, {}),
}
#: Caltech-101: 30 training images per class, the rest tested; SUN397: 50 and 50
PER_CLASS = {"caltech101": (30, None), "sun397": (50, 50)}


def _classes(dataset: Any) -> List[str]:
    found = getattr(dataset, "classes", None) or getattr(dataset, "categories", None)
    if found:
        return list(found)
    labels = getattr(dataset, "_labels", [])
    return [str(i) for i in range(max(labels) + 1)] if labels else []


def suite(name: str, path: Path, transform: Callable) -> Splits:
    """A data set of the transfer suite through torchvision's reader (no download)."""
    cls, splits, extra = SUITE[name]
    parts, classes = {}, None
    for role, kwargs in splits.items():
        try:
            dataset = cls(str(path), transform=_rgb(transform), download=False, **kwargs, **extra)
        except (RuntimeError, FileNotFoundError) as err:
            raise MissingFileError(
                f"{name}={path}: torchvision's {cls.__name__} found no data there ({err}); give "
                f"the root folder its {cls.__name__}(root, download=True) would fill."
            ) from None
        if name == "sun397":  # rglob's order depends on the file system: fix it
            pairs = sorted(zip(dataset._image_files, dataset._labels))
            dataset._image_files, dataset._labels = [p for p, _ in pairs], [y for _, y in pairs]
        found = _classes(dataset)
        if classes is None:
            classes = found
        else:
            check_same_classes(classes, found, f"{path} ({cls.__name__} train)",
                               f"{path} ({cls.__name__} {role})")
        parts[role] = dataset
    train, test = PER_CLASS.get(name, (None, None))
    return Splits(name, str(path), parts, classes or [], train, test)


READERS: Dict[str, Callable[[str, Path, Callable], Splits]] = {
    "cifar10": cifar, "cifar100": cifar,
    "stl10": lambda name, path, t: stl10(path, t),
    **{name: suite for name in SUITE},
}


def open_splits(name: str, path: Any, transform: Callable) -> Splits:
    """The splits of data set ``name`` at ``path``, images through ``transform``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise MissingFileError(f"{name}={path}: no such folder; give the folder of the data set.")
    reader = READERS.get(name)
    return reader(name, path, transform) if reader else image_folders(name, path, transform)


def seeded_split(labels: np.ndarray, per_class: int, seed: int,
                 rest_per_class: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(first, rest) indices: ``per_class`` indices of each class drawn by a generator seeded with
    ``(seed, class)``, and the others (at most ``rest_per_class`` of each class); both sorted.
    Depends only on the labels in their order and the seed.

    Raises:
        DataError: a class with no more than ``per_class`` images (nothing left to test on).
    """
    first, rest = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) <= per_class:
            raise DataError(f"class {c} has {len(members)} images; at least {per_class + 1} are "
                            f"needed to take {per_class} for training and test on the rest.")
        order = np.random.default_rng([seed, int(c)]).permutation(members)
        first.append(order[:per_class])
        rest.append(order[per_class:][:rest_per_class])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(rest))
