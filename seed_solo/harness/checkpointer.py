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
- A run whose last checkpoint is its last epoch is complete: a rerun says so and trains nothing
  (:func:`run_complete`); ``auto_resume.enabled=False`` starts a fresh run with the same settings.
- The run folder is named when it is created or continued; a run that fails before its first
  checkpoint removes the folder it created (:meth:`RunCheckpointer.on_exception`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import traceback
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf
from solo.utils.checkpointer import Checkpointer

from seed_solo.core.errors import CheckpointError, ConfigError, UserError
from seed_solo.harness.progress import EpochProgress
from seed_solo.harness.schedule import ResumedSchedule
from seed_solo.harness.trainer import MetricsHistory
from seed_solo.runs.atomic import atomic_path, torn_files, unwritable, write_json
from seed_solo.runs.folders import (
    checkpoint_epoch,
    checkpoints,
    find_checkpoint,
    last_checkpoint,
    read_metrics,
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

    The most advanced run folder of the same identity with a good checkpoint wins. When none
    does, one line sums up the other run folders (how many, and what the latest differs in).
    """
    mine = run_identity(cfg)
    passed = []  # (folder, why), most advanced first
    for run_dir in reversed(run_dirs(method_dir)):
        theirs = read_identity(run_dir)
        if theirs is None:
            passed.append((run_dir, f"it has no {IDENTITY_FILE}, an older run"))
            continue
        difference = first_difference(theirs, mine)
        if difference is not None:
            passed.append((run_dir, difference))
            continue
        ckpt = last_checkpoint(run_dir, log, training_state=True)
        if ckpt is not None:
            return ckpt, run_dir
        passed.append((run_dir, "the same settings, but no checkpoint that opens"))
    if passed:
        folder, why = passed[0]
        found = (f"the run folder in {method_dir} is another run ({folder.name}: {why})"
                 if len(passed) == 1 else
                 f"the {len(passed)} run folders in {method_dir} are other runs (the latest, "
                 f"{folder.name}: {why})")
        log(f"seed-solo: starting a new run: {found}; `seed-solo runs {method_dir}` lists "
            "them.")
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
        self.created: Optional[Path] = None  # the outermost folder this run created

    def initial_setup(self, trainer: Any) -> None:
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not a user's own
            trainer.strategy.checkpoint_io = RunFolderCheckpointIO()
        try:
            if self.folder is None:
                self.created = _first_missing(self.logdir)
                super().initial_setup(trainer)
                self.created = self.created or self.path
            else:
                self.path = self.folder
                self.ckpt_placeholder = f"{self.cfg.name}-{self.path.name}" + "-ep={}.ckpt"
                self.last_ckpt = self.resumed  # replaced by the next save unless keep_prev
            if trainer.is_global_zero:
                how = ("new" if self.folder is None else f"continued from {self.resumed.name}"
                       if self.resumed is not None else "continued after its cut-off first save")
                print(f"seed-solo: run folder {self.path} ({how})")
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

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """A run that fails before its first checkpoint leaves no folder behind: its run folder
        is removed, and the folders above it that it created (``checkpoint.dir``...) when
        nothing else is in them."""
        if (not trainer.is_global_zero or self.created is None or not self.path.is_dir()
                or checkpoints(self.path)):
            return
        shutil.rmtree(self.path, ignore_errors=True)
        removed = self.path
        for parent in self.path.parents:
            if not parent.resolve().is_relative_to(self.created.resolve()):
                break  # above what this run created
            try:
                parent.rmdir()  # only when empty: another run may have started in it
            except OSError:
                break
            removed = parent
        print(f"seed-solo: removed {removed}: the run failed before its first checkpoint.")


def _first_missing(folder: Path) -> Optional[Path]:
    """The outermost of ``folder`` and its parents that does not exist yet (None: it exists)."""
    missing = None
    for path in [folder, *folder.parents]:
        if path.exists():
            break
        missing = path
    return missing


def epochs_done(ckpt: Path) -> int:
    """How many epochs a run had finished when it wrote ``ckpt`` (``...-ep=E.ckpt``: E + 1)."""
    return checkpoint_epoch(ckpt) + 1


def run_complete(cfg: DictConfig, ckpt: Optional[Union[str, Path]]) -> bool:
    """True when the run resumed from ``ckpt`` has already trained ``max_epochs`` epochs."""
    return ckpt is not None and epochs_done(Path(ckpt)) >= int(cfg.max_epochs)


def finished_metrics(ckpt: Union[str, Path]) -> Dict[str, Any]:
    """The last epoch's metrics of the finished run ``ckpt`` belongs to (its ``metrics.jsonl``;
    empty when it has none)."""
    return (read_metrics(Path(ckpt).parent) or [{}])[-1]


def resume_message(cfg: DictConfig, ckpt: Path) -> str:
    """What a run resumed from ``ckpt`` says: resuming, or already complete and how to go on."""
    done, total = epochs_done(ckpt), int(cfg.max_epochs)
    if done < total:
        return (f"Resuming from {ckpt}, a previous run with the same settings "
                f"({done} of {total} epochs done).")
    return (f"seed-solo: {ckpt.parent} is already complete (epoch {done} of {total}), "
            f"nothing to train; its checkpoint is {ckpt}. To train a fresh run with the same "
            "settings add auto_resume.enabled=False (seed-solo distill: --fresh); to train "
            "on, raise max_epochs.")


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
        if run_complete(cfg, ckpt):
            print(resume_message(cfg, ckpt))
        return ckpt
    if cfg.auto_resume.enabled:
        ckpt, _ = find_resume(cfg, method_dir)
        if ckpt is not None:
            print(resume_message(cfg, ckpt))
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
    callbacks.append(EpochProgress())
    return callbacks, (str(ckpt_path) if ckpt_path is not None else None)


def run_folder(callbacks: List[Any], ckpt_path: Optional[str] = None) -> Optional[Path]:
    """The folder of the run ``callbacks`` checkpointed into (once training started), else
    that of the checkpoint it resumed from."""
    for callback in callbacks:
        if isinstance(callback, RunCheckpointer) and getattr(callback, "path", None):
            return Path(callback.path)
    return Path(ckpt_path).parent if ckpt_path else None
