"""Run folders as solo-learn writes them: ``<checkpoint.dir>/<method>/<run>/``.

A run folder holds ``args.json`` (the resolved config) and ``<name>-<run>-ep=E.ckpt`` files.
This module holds the one rule for "which checkpoint of a folder" and the one reader of
``args.json``; the entry points, the teachers and the demo all go through it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Union

ARGS_FILE = "args.json"
_EPOCH = re.compile(r"ep=(\d+)")


def checkpoint_epoch(path: Union[str, Path]) -> int:
    """The ``E`` of ``...-ep=E.ckpt``; -1 for a name without one."""
    m = _EPOCH.search(Path(path).name)
    return int(m.group(1)) if m else -1


def checkpoints(folder: Union[str, Path]) -> List[Path]:
    """The ``*.ckpt`` files of ``folder``, oldest first: by epoch in the name, then by name.

    Never by file time or directory order, which a copy or a restore can change.
    """
    return sorted(Path(folder).glob("*.ckpt"), key=lambda p: (checkpoint_epoch(p), p.name))


def find_checkpoint(path: Union[str, Path]) -> Path:
    """``path`` itself if it is not a folder, else its last checkpoint (:func:`checkpoints`).

    Raises:
        FileNotFoundError: a folder without ``*.ckpt`` files.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    found = checkpoints(path)
    if not found:
        raise FileNotFoundError(
            f"no *.ckpt file in {str(path)!r}; pass a checkpoint file or the run folder "
            "<checkpoint.dir>/<method>/<run> that holds one."
        )
    return found[-1]


def read_args(path: Union[str, Path]) -> Dict[str, Any]:
    """The resolved config solo-learn wrote as ``args.json`` in a run folder.

    Args:
        path: the run folder, or a checkpoint file inside it.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    args_path = folder / ARGS_FILE
    if not args_path.is_file():
        raise FileNotFoundError(
            f"{str(args_path)!r} not found: a solo-learn run folder holds the args.json that "
            "solo-learn's Checkpointer writes beside the .ckpt (it names the backbone and "
            "method); copy it there."
        )
    with open(args_path) as f:
        return json.load(f)


def run_dirs(method_dir: Union[str, Path]) -> List[Path]:
    """The run folders (with ``args.json``) under ``<checkpoint.dir>/<method>``, oldest first.

    Ordered by the epoch of each folder's last checkpoint (a run resumed into a new folder
    comes after the one it resumed), then by name.
    """
    folders = [p for p in Path(method_dir).glob("*") if (p / ARGS_FILE).is_file()]

    def last_epoch(folder: Path) -> int:
        found = checkpoints(folder)
        return checkpoint_epoch(found[-1]) if found else -1

    return sorted(folders, key=lambda p: (last_epoch(p), p.name))
