"""Images that cannot be read: named with their index, or skipped (``data.on_corrupt=skip``).

By default a corrupt or zero-byte image stops the run with one sentence naming it; with
``skip`` the data set serves the next readable image in its place (its own index and label,
so nothing is mislabelled) and appends the unreadable file's path to a log, which
:class:`SkippedImages` counts at the end of training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from lightning.pytorch.callbacks import Callback
from torch.utils.data import Dataset

from seed_solo.core.errors import ConfigError, DataError

ON_CORRUPT = ("error", "skip")
LOG_NAME = "skipped_images.txt"


class CheckedImages(Dataset):
    """``dataset`` (an image-folder data set: ``samples`` of (path, label)) with unreadable
    images named or skipped; every other attribute is the wrapped data set's."""

    _OWN = ("dataset", "on_corrupt", "log_path")

    def __init__(self, dataset: Any, on_corrupt: str = "error",
                 log_path: Optional[str] = None) -> None:
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(f"data.on_corrupt={on_corrupt!r}; expected one of {ON_CORRUPT}.")
        object.__setattr__(self, "dataset", dataset)
        object.__setattr__(self, "on_corrupt", on_corrupt)
        object.__setattr__(self, "log_path", log_path)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dataset, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.dataset, name, value)  # e.g. the kNN bank's transform

    def _path(self, index: int) -> str:
        samples = getattr(self.dataset, "samples", None)
        return str(samples[index][0]) if samples is not None else f"item {index}"

    def __getitem__(self, index: int) -> Any:
        n = len(self.dataset)
        for step in range(n):
            i = (index + step) % n
            try:
                return self.dataset[i]
            except OSError as err:  # PIL's UnidentifiedImageError and truncated files
                if self.on_corrupt == "error":
                    raise DataError(
                        f"image {i} ({self._path(i)}) cannot be read ({err}); delete or replace "
                        "it, or set data.on_corrupt=skip to skip unreadable images."
                    ) from None
                if self.log_path:
                    with open(self.log_path, "a") as f:
                        f.write(self._path(i) + "\n")
        raise DataError("no image of the data set can be read; check data.train_path.")


def skipped(log_path: Optional[str]) -> list:
    """The distinct paths a run skipped, from its log."""
    if not log_path or not os.path.isfile(log_path):
        return []
    return sorted(set(Path(log_path).read_text().split("\n")) - {""})


class SkippedImages(Callback):
    """Lightning callback: points the data set's skip log into the run folder at the start,
    and says how many images were skipped at the end."""

    def __init__(self, dataset: CheckedImages, checkpointer: Any = None) -> None:
        self.dataset, self.checkpointer = dataset, checkpointer

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        folder = getattr(self.checkpointer, "path", None)
        if folder is not None:
            self.dataset.log_path = str(Path(folder) / LOG_NAME)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        paths = skipped(self.dataset.log_path)
        if paths and trainer.is_global_zero:
            print(f"seed-solo: skipped {len(paths)} unreadable images; their paths are in "
                  f"{self.dataset.log_path}.")
