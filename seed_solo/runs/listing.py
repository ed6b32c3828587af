"""Every run under a folder, newest last: what ``seed-solo runs`` prints and ``--latest`` picks.

A run is a folder holding ``args.json`` (``<checkpoint.dir>/<method>/<run>/``, at any depth under
the folder given). Runs are ordered by their last write (the newest of their checkpoints,
``metrics.jsonl`` and ``args.json``): here the clock is the point, unlike the one rule for
"which checkpoint of a folder" (:func:`seed_solo.runs.folders.last_checkpoint`), which never
looks at it. A run's identity (:mod:`seed_solo.runs.identity`) is shown as a short digest: two
folders with the same digest hold runs of the same settings, which auto-resume would continue.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

from seed_solo.runs.folders import (
    ARGS_FILE,
    METRICS_FILE,
    checkpoint_epoch,
    checkpoints,
    read_args,
)
from seed_solo.runs.identity import IDENTITY_FILE, select


@dataclass(frozen=True)
class RunSummary:
    """One run folder, as ``seed-solo runs`` shows it.

    Attributes:
        folder: the run folder.
        time: its last write, seconds since the epoch.
        method: ``seed``, ``linear``, or another solo-learn method.
        student: ``backbone.name``.
        teacher: ``method_kwargs.teacher`` (None for other methods).
        data: ``data.train_path``.
        epochs_done: epochs its last checkpoint holds (0: no checkpoint).
        max_epochs: the epochs the run was set to train.
        identity: the first 8 hex digits of its identity's sha256 (``-``: no identity.json).
    """

    folder: Path
    time: float
    method: str
    student: str
    teacher: Optional[str]
    data: Optional[str]
    epochs_done: int
    max_epochs: Optional[int]
    identity: str

    @property
    def status(self) -> str:
        """``complete``, ``stopped`` (resumable: rerun the command) or ``no checkpoint``."""
        if not self.epochs_done:
            return "no checkpoint"
        return "complete" if self.max_epochs and self.epochs_done >= self.max_epochs \
            else "stopped"


def identity_digest(folder: Path) -> str:
    path = folder / IDENTITY_FILE
    if not path.is_file():
        return "-"
    canonical = json.dumps(json.loads(path.read_text()), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def summarize(folder: Union[str, Path]) -> RunSummary:
    """The :class:`RunSummary` of one run folder."""
    folder = Path(folder)
    args = read_args(folder)
    ckpts = checkpoints(folder)
    files = [*ckpts, folder / METRICS_FILE, folder / ARGS_FILE]
    time = max(f.stat().st_mtime for f in files if f.is_file())
    epochs = select(args, "max_epochs")
    return RunSummary(
        folder=folder, time=time, method=str(args.get("method") or "-"),
        student=str(select(args, "backbone.name") or "-"),
        teacher=select(args, "method_kwargs.teacher"), data=select(args, "data.train_path"),
        epochs_done=checkpoint_epoch(ckpts[-1]) + 1 if ckpts else 0,
        max_epochs=int(epochs) if isinstance(epochs, int) else None,
        identity=identity_digest(folder))


def find_runs(root: Union[str, Path], method: Optional[str] = None) -> List[RunSummary]:
    """Every run folder under ``root`` (``root`` itself included), of ``method`` if given,
    oldest first by last write."""
    root = Path(root)
    folders = sorted({p.parent for p in root.rglob(ARGS_FILE)}) if root.is_dir() else []
    runs = [summarize(f) for f in folders]
    return sorted((r for r in runs if method in (None, r.method)),
                  key=lambda r: (r.time, str(r.folder)))


def latest_run(root: Union[str, Path], method: Optional[str] = None) -> Optional[Path]:
    """The folder of the run under ``root`` written last that holds a checkpoint, or None."""
    found = [r for r in find_runs(root, method) if r.epochs_done]
    return found[-1].folder if found else None
