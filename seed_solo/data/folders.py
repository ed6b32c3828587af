"""What a folder of images is: labelled or not, with or without validation images.

``seed-solo distill DATA`` takes any of these, and says which it found:

- ``DATA/train/<class>/...`` and ``DATA/val/<class>/...``: labelled, validated (online kNN);
- ``DATA/<class>/...`` (or ``DATA/train/<class>/...`` alone): labelled, no validation images;
- ``DATA/*.jpg`` (or ``DATA/train/*.jpg``): unlabelled, a flat folder of images.

A labelled folder is read by torchvision's ``ImageFolder`` (classes = sorted sub-folders, every
image below each, at any depth); a flat one by solo-learn's unlabelled reader, which takes every
file of the folder, so a file that is not an image is refused here by name. Image files are those
with torchvision's extensions (``IMG_EXTENSIONS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

from torchvision.datasets.folder import IMG_EXTENSIONS

from seed_solo.core.errors import DataError, MissingFileError


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMG_EXTENSIONS


@dataclass(frozen=True)
class ImageFolderShape:
    """The shape of a data folder.

    Attributes:
        train: the folder of training images.
        val: the folder of labelled validation images, or None.
        classes: the class names (sub-folders of ``train``); empty for a flat folder.
        images: the number of training images.
        val_images: the number of validation images (0 without ``val``).
    """

    train: Path
    val: Optional[Path]
    classes: Tuple[str, ...]
    images: int
    val_images: int = 0

    @property
    def labelled(self) -> bool:
        return bool(self.classes)

    def describe(self) -> str:
        """One line: what was found, where."""
        if not self.labelled:
            return f"{self.images} unlabelled images in {self.train} (a flat folder)"
        val = (f"; {self.val_images} validation images in {self.val}" if self.val
               else "; no validation images")
        return (f"{self.images} images of {len(self.classes)} classes in {self.train}"
                f"{val}")


def _labelled(folder: Path) -> Tuple[Tuple[str, ...], int]:
    """(class names, image count) of an ImageFolder; every class must hold an image."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    counts = {c: sum(1 for f in (folder / c).rglob("*") if is_image(f)) for c in classes}
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise DataError(
            f"{folder} has class folders without images: {', '.join(empty[:5])}"
            f"{' ...' if len(empty) > 5 else ''}; remove them, or put the images there "
            f"(image files end in {', '.join(IMG_EXTENSIONS)})."
        )
    return tuple(classes), sum(counts.values())


def _flat(folder: Path) -> int:
    """The image count of a flat folder, whose every file must be an image."""
    entries = list(folder.iterdir())
    others = sorted(p.name for p in entries if not is_image(p))
    if others:
        raise DataError(
            f"{folder} is a flat folder of images but also holds {len(others)} other "
            f"entr{'y' if len(others) == 1 else 'ies'} ({', '.join(others[:5])}"
            f"{' ...' if len(others) > 5 else ''}), which the unlabelled reader would try to "
            "open as images; move them out of the folder."
        )
    return len(entries)


def _one_folder(folder: Path) -> Tuple[Tuple[str, ...], int]:
    """(classes, images) of a labelled folder, or ((), images) of a flat one."""
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    dirs = [p for p in entries if p.is_dir()]
    loose = [p for p in entries if is_image(p)]
    if not entries or (not dirs and not loose):
        raise DataError(f"{folder} holds no images; put the images there (flat, or one "
                        "sub-folder per class).")
    if dirs and loose:
        raise DataError(
            f"{folder} holds both images ({loose[0].name}, ...) and sub-folders "
            f"({dirs[0].name}, ...); use one layout: all images directly in the folder "
            "(unlabelled), or one sub-folder per class (labelled)."
        )
    return _labelled(folder) if dirs else ((), _flat(folder))


def folder_shape(root: Union[str, Path]) -> ImageFolderShape:
    """The :class:`ImageFolderShape` of ``root``.

    Raises:
        MissingFileError: ``root`` is not a folder.
        DataError: no images, images mixed with sub-folders, an empty class, a file that is not
            an image in a flat folder, or validation classes other than the training ones.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise MissingFileError(f"the data folder {str(root)!r} does not exist; pass a folder "
                               "of images (flat, one sub-folder per class, or train/ and val/).")
    train, val = root / "train", root / "val"
    if not train.is_dir():
        classes, images = _one_folder(root)
        return ImageFolderShape(root, None, classes, images)
    classes, images = _one_folder(train)
    if not classes or not val.is_dir():
        return ImageFolderShape(train, None, classes, images)
    val_classes, val_images = _one_folder(val)
    if val_classes != classes:
        missing: List[str] = sorted(set(classes) ^ set(val_classes))
        raise DataError(
            f"{val} and {train} hold other classes ({', '.join(missing[:5])} in one only); "
            "the class folders of train/ and val/ must have the same names, so that labels "
            "mean the same class."
        )
    return ImageFolderShape(train, val, classes, images, val_images)
