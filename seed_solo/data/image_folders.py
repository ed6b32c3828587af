"""The image folders a run reads: there, folders, and without a symbolic link that lists images
twice.

torchvision's ``ImageFolder`` (which solo-learn uses, and DALI's file reader alike) follows
symbolic links to folders. A link to a folder already in the tree (``ln -s .. train/c0/loop``)
makes it list the same images again and again, under other labels, until the path grows too
long: 60 images became 2,460 without a word. :func:`check_image_folder` refuses such a tree
by naming the link, before anything reads it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from seed_solo.core.errors import DataError, MissingFileError

#: solo-learn's data sets that are read from image folders (class folders of images)
FOLDER_DATASETS = ("custom", "imagenet", "imagenet100")


def check_data_paths(dataset: str, data_format: str,
                     paths: Dict[str, Optional[Union[str, os.PathLike]]]) -> None:
    """:func:`check_image_folder` for each ``setting -> path`` of ``paths`` that is set, when
    ``dataset`` is read from image folders (not CIFAR or STL-10, which are downloaded there,
    and not an h5 file)."""
    if dataset not in FOLDER_DATASETS or data_format == "h5":
        return
    for setting, path in paths.items():
        if path is not None and str(path) != "":
            check_image_folder(path, setting)


def check_image_folder(path: Union[str, os.PathLike], setting: str) -> None:
    """Refuse ``path`` (given as ``setting``) unless it is a folder whose tree reaches each
    folder once.

    Every folder is listed once (``os.scandir``, whose entries say for free whether they are
    links or folders); only a symbolic link to a folder costs a ``stat``.

    Raises:
        MissingFileError: ``path`` does not exist or is not a folder.
        DataError: a symbolic link leads to a folder the tree already reaches (a loop when it
            is one of the link's own parents), naming the link and its target.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise MissingFileError(f"{setting}={path} {what}; point it at a folder of class folders "
                               "of images.")
    seen: Dict[Tuple[int, int], str] = {_identity(os.stat(root)): str(root)}
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:  # unreadable: torchvision names it when it lists the folder
            continue
        for entry in entries:
            if entry.is_symlink():
                try:
                    target = os.stat(entry.path)
                except OSError:  # a dangling link: not a folder, nothing to follow
                    continue
                if not _is_folder(target):
                    continue
                identity = _identity(target)
            elif entry.is_dir(follow_symlinks=False):
                identity = _identity(entry.stat(follow_symlinks=False))
            else:
                continue
            if identity in seen:
                raise DataError(_reached_twice(setting, entry.path, seen[identity], folder))
            seen[identity] = entry.path
            stack.append(entry.path)


def _identity(st: os.stat_result) -> Tuple[int, int]:
    return st.st_dev, st.st_ino


def _is_folder(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode)


def _reached_twice(setting: str, link: str, first: str, parent: str) -> str:
    target = os.path.realpath(link)
    loop = Path(parent).resolve().is_relative_to(Path(target))
    if loop:
        return (f"{setting}: {link} is a symbolic link to {target}, one of its own parent "
                "folders: a loop that lists the same images again and again under other "
                "labels; remove the link.")
    return (f"{setting}: {link} is a symbolic link to {target}, which the data set already "
            f"reaches as {first}: its images would be listed twice; remove one of them.")
