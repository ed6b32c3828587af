"""Checkpoints that survive a crash, and resuming the right run from the right file.

- Every checkpoint is written by ``torch.save`` straight into a temporary file in its own run
  folder, fsynced and renamed (:class:`RunFolderCheckpointIO`: no byte goes through ``TMPDIR``,
  as Lightning's own save would send it), so a kill mid-save leaves the previous checkpoint
  whole; leftovers of such a kill are removed at the next start, and a run killed during its
  first save continues in its own folder (:func:`torn_first_save`). A full or read-only
  ``checkpoint.dir`` is one sentence (:func:`seed_solo.runs.atomic.unwritable`).
- A run's identity (:mod:`seed_solo.runs.identity`: method, student, teacher and its file's
  fingerprint, data paths, crops, queue, d, temperatures...) is written as ``identity.json``
  beside ``args.json``. Auto-resume continues a run only when its identity matches, and says
  which setting differs otherwise; an explicit ``resume_from_checkpoint`` of another identity
  is refused unless ``+resume_force=True``.
- A resumed run keeps writing into its own folder (checkpoints and ``metrics.jsonl``).
- The checkpoint resumed from is the folder's last checkpoint that holds the training state
  (:func:`seed_solo.runs.folders.last_checkpoint`), never the newest file.
"""

from __future__ import annotations

import contextlib
import json
import os
import traceback
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf
from solo.utils.checkpointer import Checkpointer

from seed_solo.core.errors import CheckpointError, ConfigError, UserError
from seed_solo.harness.schedule import ResumedSchedule
from seed_solo.harness.trainer import MetricsHistory
from seed_solo.runs.atomic import atomic_path, torn_files, unwritable, write_json
from seed_solo.runs.folders import (
    checkpoints,
    find_checkpoint,
    last_checkpoint,
    run_dirs,
    temp_files,
)
from seed_solo.runs.identity import IDENTITY_FILE, first_difference, identity, read_identity

#: where Lightning restores a checkpoint (model, callbacks, optimizers, loops)
_RESTORE = "/trainer/connectors/checkpoint_connector.py"


def run_identity(cfg: DictConfig) -> Dict[str, Any]:
    return identity(OmegaConf.to_container(cfg, resolve=True))


def find_resume(cfg: DictConfig, method_dir: Path,
                log=print) -> Tuple[Optional[Path], Optional[Path]]:
    """(checkpoint, its run folder) for auto-resume, or (None, None) to start a new run.

    The most advanced run folder of the same identity with a good checkpoint wins; for the
    others, one line says why they are not continued.
    """
    mine = run_identity(cfg)
    for run_dir in reversed(run_dirs(method_dir)):
        theirs = read_identity(run_dir)
        if theirs is None:
            log(f"seed-solo: not resuming {run_dir}: it has no {IDENTITY_FILE} (an older run).")
            continue
        difference = first_difference(theirs, mine)
        if difference is not None:
            log(f"seed-solo: not resuming {run_dir}, a different run ({difference}).")
            continue
        ckpt = last_checkpoint(run_dir, log, training_state=True)
        if ckpt is not None:
            return ckpt, run_dir
        log(f"seed-solo: not resuming {run_dir}: it holds no checkpoint that opens.")
    return None, None


def check_explicit_resume(cfg: DictConfig, ckpt: Path) -> None:
    """Refuse ``resume_from_checkpoint`` of another run's identity unless ``resume_force``."""
    theirs = read_identity(ckpt.parent)
    if theirs is None or cfg.get("resume_force", False):
        return
    difference = first_difference(theirs, run_identity(cfg))
    if difference is not None:
        raise ConfigError(
            f"resume_from_checkpoint={ckpt} belongs to a different run ({difference}); "
            "resume with the same settings, or add +resume_force=True to continue anyway."
        )


class RunFolderCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, less its detour: ``torch.save`` straight into the path it
    is given (the run folder's temporary file of :func:`seed_solo.runs.atomic.atomic_path`).

    Lightning's own (``_atomic_save``) serialises the whole checkpoint into memory, then writes
    it through an fsspec transaction, a temporary file in ``TMPDIR`` moved into place: a kill
    there left the checkpoint's size in ``TMPDIR`` for good, and a small ``TMPDIR`` failed the
    save although the run folder had room.
    """

    def save_checkpoint(self, checkpoint: Dict[str, Any], path: Any,
                        storage_options: Optional[Any] = None) -> None:
        # through a Python file: a full disk then surfaces as its OSError (ENOSPC)
        with open(path, "wb") as f:
            torch.save(checkpoint, f)


class RunCheckpointer(Checkpointer):
    """solo-learn's Checkpointer, saving atomically and writing the run's identity; a run
    resumed from checkpoint ``resumed`` goes on in that checkpoint's folder and file names, and
    a run whose first save was cut off goes on in that run's ``folder``."""

    def __init__(self, cfg: DictConfig, logdir: str, resumed: Optional[Path] = None,
                 folder: Optional[Path] = None) -> None:
        super().__init__(cfg, logdir=logdir, frequency=cfg.checkpoint.frequency,
                         keep_prev=cfg.checkpoint.keep_prev)
        self.resumed = resumed
        self.folder = resumed.parent if resumed is not None else folder

    def initial_setup(self, trainer: Any) -> None:
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not a user's own
            trainer.strategy.checkpoint_io = RunFolderCheckpointIO()
        try:
            if self.folder is None:
                super().initial_setup(trainer)
            else:
                self.path = self.folder
                self.ckpt_placeholder = f"{self.cfg.name}-{self.path.name}" + "-ep={}.ckpt"
                self.last_ckpt = self.resumed  # replaced by the next save unless keep_prev
            if trainer.is_global_zero:
                os.makedirs(self.path, exist_ok=True)
                for leftover in temp_files(self.path):
                    leftover.unlink()
        except OSError as err:
            raise (unwritable(err, self.logdir, "checkpoint.dir") or err) from err
        if trainer.is_global_zero:
            write_json(self.path / IDENTITY_FILE, run_identity(self.cfg), "checkpoint.dir")

    def save_args(self, trainer: Any) -> None:
        """``args.json``, written atomically (solo-learn's is a plain write)."""
        if trainer.is_global_zero:
            args = OmegaConf.to_container(self.cfg)
            args["wandb_run_id"] = getattr(self, "wandb_run_id", None)
            with atomic_path(self.path / "args.json", "checkpoint.dir") as tmp:
                tmp.write_text(json.dumps(args, default=lambda o: "<not serializable>"))

    def save(self, trainer: Any) -> None:
        if trainer.sanity_checking:
            return
        ckpt = self.path / self.ckpt_placeholder.format(trainer.current_epoch)
        if trainer.is_global_zero:
            with atomic_path(ckpt, "checkpoint.dir") as tmp:
                trainer.save_checkpoint(tmp)
        else:
            trainer.save_checkpoint(ckpt)  # collective; only rank 0 writes
        if (trainer.is_global_zero and self.last_ckpt and self.last_ckpt != ckpt
                and not self.keep_prev and Path(self.last_ckpt).exists()):
            os.remove(self.last_ckpt)
        self.last_ckpt = ckpt


def torn_first_save(cfg: DictConfig, method_dir: Path) -> Optional[Path]:
    """The run folder of this run's identity that holds no checkpoint but the temporary file of
    a save whose process is gone (a kill during the first save), latest first; None if none.

    The rerun goes on in that folder (removing the torn file) instead of leaving it behind.
    """
    mine = run_identity(cfg)
    for run_dir in reversed(run_dirs(method_dir)):
        theirs = read_identity(run_dir)
        if (theirs is not None and first_difference(theirs, mine) is None
                and not checkpoints(run_dir) and torn_files(run_dir)):
            return run_dir
    return None


@contextlib.contextmanager
def resuming(ckpt_path: Optional[str]) -> Iterator[None]:
    """Around ``trainer.fit(..., ckpt_path)``: a checkpoint that Lightning cannot restore (one
    crafted, or of another model: its restore fails) is a :class:`CheckpointError` naming the
    file; a failure anywhere else stays what it is."""
    try:
        yield
    except UserError:
        raise
    except Exception as err:
        frames = traceback.extract_tb(err.__traceback__)
        if ckpt_path is None or not any(f.filename.endswith(_RESTORE) for f in frames):
            raise
        text = " ".join(str(err).split())[:300]
        raise CheckpointError(
            f"cannot resume from {ckpt_path}: Lightning's restore failed ({type(err).__name__}: "
            f"{text}); it does not hold this run's training state. Move it out of the run "
            "folder (a rerun then takes the checkpoint before it), or start afresh in another "
            "checkpoint.dir.") from err


def resume_point(cfg: DictConfig, method_dir: Path) -> Optional[Path]:
    """The checkpoint this run continues: ``resume_from_checkpoint`` (checked against this
    run's identity, then removed from ``cfg``), else auto-resume's, else None."""
    explicit = cfg.get("resume_from_checkpoint")
    if explicit is not None:
        ckpt = find_checkpoint(explicit)
        check_explicit_resume(cfg, ckpt)
        del cfg.resume_from_checkpoint
        return ckpt
    if cfg.auto_resume.enabled:
        ckpt, _ = find_resume(cfg, method_dir)
        if ckpt is not None:
            print(f"Resuming from {ckpt}, a previous run with the same settings.")
        return ckpt
    return None


def checkpoint_and_resume(cfg: DictConfig, subdir: str) -> Tuple[List[Any], Optional[str]]:
    """The run's callbacks (checkpointer, ``metrics.jsonl``, the lr schedule of this run) and
    the checkpoint to resume from, if any; checkpoints go to ``<checkpoint.dir>/<subdir>``."""
    method_dir = Path(cfg.checkpoint.dir) / subdir
    ckpt_path = resume_point(cfg, method_dir)
    callbacks: List[Any] = []
    checkpointer = None
    if cfg.checkpoint.enabled:
        resumed_here = ckpt_path if ckpt_path is not None and (
            ckpt_path.parent.parent.resolve() == method_dir.resolve()) else None
        torn = torn_first_save(cfg, method_dir) if (
            ckpt_path is None and cfg.auto_resume.enabled) else None
        checkpointer = RunCheckpointer(cfg, str(method_dir), resumed_here, torn)
    # first: an epoch's metrics row is in the checkpoint of that epoch (MetricsHistory)
    callbacks.append(MetricsHistory(checkpointer, cfg.get("metrics_dir")))
    if checkpointer is not None:
        callbacks.append(checkpointer)
    callbacks.append(ResumedSchedule())  # the lr schedule of this run, not the checkpoint's
    return callbacks, (str(ckpt_path) if ckpt_path is not None else None)
