"""Run folders as solo-learn writes them: ``<checkpoint.dir>/<method>/<run>/``.

A run folder holds ``args.json`` (the resolved config) and ``<name>-<run>-ep=E.ckpt`` files.
This module holds the one rule for "which checkpoint of a folder" (:func:`last_checkpoint`)
and the one reader of ``args.json``; evaluation, export, the teachers, the demo and
auto-resume all go through it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from seed_solo.core.errors import MissingFileError
from seed_solo.runs.checkpoint_files import check_readable, read_checkpoint

ARGS_FILE = "args.json"
#: one JSON object per trained epoch: every logged metric (:class:`seed_solo.harness.trainer.
#: MetricsHistory` writes it)
METRICS_FILE = "metrics.jsonl"
#: what a checkpoint must hold to resume training from it (the keys Lightning's restore reads)
TRAINING_STATE = ("state_dict", "epoch", "global_step", "pytorch-lightning_version", "loops",
                  "optimizer_states")
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


def checkpoint_problem(path: Union[str, Path], training_state: bool = False) -> Optional[str]:
    """None when ``path`` is a whole checkpoint, else why it is not.

    Whole: a complete ``torch.save`` file (checked from its first and last bytes, without
    loading it); with ``training_state``, also one that opens and holds Lightning's
    :data:`TRAINING_STATE`, so that training can resume from it.
    """
    try:
        check_readable(Path(path))
        if not training_state:
            return None
        ckpt = read_checkpoint(path, allow_inert_objects=True)
    except (OSError, ValueError) as err:
        return str(err)
    missing = [k for k in TRAINING_STATE if not (isinstance(ckpt, Mapping) and k in ckpt)]
    return f"{Path(path).name} lacks {', '.join(missing)}" if missing else None


def last_checkpoint(folder: Union[str, Path], log: Callable[[str], Any] = print,
                    training_state: bool = False,
                    passed: Optional[List[str]] = None) -> Optional[Path]:
    """The one rule for "which checkpoint of a folder": the highest epoch (:func:`checkpoints`)
    that is whole (:func:`checkpoint_problem`); None when none is. Each checkpoint passed over
    is reported through ``log``, and why through ``passed``."""
    for path in reversed(checkpoints(folder)):
        problem = checkpoint_problem(path, training_state)
        if problem is None:
            return path
        log(f"seed-solo: skipping {path}: {problem}")
        if passed is not None:
            passed.append(problem)
    return None


def find_checkpoint(path: Union[str, Path], log: Callable[[str], Any] = print) -> Path:
    """``path`` itself if it is not a folder, else its :func:`last_checkpoint`.

    Raises:
        FileNotFoundError: a folder without a whole ``*.ckpt`` file.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    passed: List[str] = []
    found = last_checkpoint(path, log, passed=passed)
    if found is None:
        raise MissingFileError(
            f"no whole *.ckpt file in {str(path)!r}; pass a checkpoint file or the run folder "
            "<checkpoint.dir>/<method>/<run> that holds one."
            + (f" Passed over: {'; '.join(passed)}" if passed else "")
        )
    return found


def read_args(path: Union[str, Path]) -> Dict[str, Any]:
    """The resolved config solo-learn wrote as ``args.json`` in a run folder.

    Args:
        path: the run folder, or a checkpoint file inside it.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    args_path = folder / ARGS_FILE
    if not args_path.is_file():
        raise MissingFileError(
            f"{str(args_path)!r} not found: a solo-learn run folder holds the args.json that "
            "solo-learn's Checkpointer writes beside the .ckpt (it names the backbone and "
            "method); copy it there."
        )
    with open(args_path) as f:
        return json.load(f)


def read_metrics(folder: Union[str, Path]) -> List[Dict[str, Any]]:
    """The rows of a run folder's :data:`METRICS_FILE`, oldest first (none: an empty list); a
    line cut off by a kill is left out."""
    path = Path(folder) / METRICS_FILE
    rows = []
    for line in (path.read_text().splitlines() if path.is_file() else []):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


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


def temp_files(folder: Union[str, Path]) -> List[Path]:
    """Temporary files an interrupted atomic write left in ``folder``
    (:mod:`seed_solo.runs.atomic`)."""
    return sorted(Path(folder).glob(".*.part"))
