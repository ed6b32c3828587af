"""Run folders as solo-learn writes them: ``<checkpoint.dir>/<method>/<run>/``.

A run folder holds ``args.json`` (the resolved config) and ``<name>-<run>-ep=E.ckpt`` files.
This module holds the one rule for "which checkpoint of a folder", the one reader of
``args.json``, and what makes two runs the same run (``identity.json``, written beside
``args.json``); the entry points, the teachers, the demo and auto-resume all go through it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Union

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


def find_checkpoint(path: Union[str, Path], log=print) -> Path:
    """``path`` itself if it is not a folder, else its last whole checkpoint.

    Last by :func:`checkpoints`; a file that cannot be a whole checkpoint (empty, a zip archive
    cut off while written) is passed over and reported through ``log``.

    Raises:
        FileNotFoundError: a folder without a whole ``*.ckpt`` file.
    """
    from seed_solo.state_dict import check_readable

    path = Path(path)
    if not path.is_dir():
        return path
    broken = []
    for ckpt in reversed(checkpoints(path)):
        try:
            check_readable(ckpt)
        except ValueError as err:
            log(f"seed-solo: skipping {err}")
            broken.append(str(err))
            continue
        return ckpt
    raise FileNotFoundError(
        f"no whole *.ckpt file in {str(path)!r}; pass a checkpoint file or the run folder "
        "<checkpoint.dir>/<method>/<run> that holds one."
        + (f" Passed over: {'; '.join(broken)}" if broken else "")
    )


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


# --- a run's identity: what must match for a run to continue another -------------------------

IDENTITY_FILE = "identity.json"
#: the settings that make two runs the same run (dotted keys of the resolved config)
IDENTITY_KEYS = (
    "name", "method", "backbone.name", "backbone.kwargs", "data.dataset", "data.train_path",
    "data.val_path", "data.fraction", "method_kwargs.teacher", "method_kwargs.teacher_format",
    "method_kwargs.teacher_options", "method_kwargs.queue_size", "method_kwargs.proj_output_dim",
    "method_kwargs.tau_teacher", "method_kwargs.tau_student", "method_kwargs.teacher_cache",
    "pretrained_feature_extractor",
)  # not max_epochs: resuming with more epochs extends a run
_FINGERPRINT_BYTES = 8 << 20


def _select(cfg: Mapping[str, Any], dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def file_fingerprint(path: Union[str, Path]) -> str:
    """``<size>:<sha256 of the first and last 8 MiB>``: tells a replaced file from the same one
    in well under a second, even for multi-GB teachers."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(_FINGERPRINT_BYTES))
        if size > 2 * _FINGERPRINT_BYTES:
            f.seek(size - _FINGERPRINT_BYTES)
            h.update(f.read())
    return f"{size}:{h.hexdigest()[:16]}"


def identity(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """The run-defining settings of a resolved config (a plain dict), plus the crops and, for a
    teacher given as a file or run folder, that file's fingerprint."""
    ident = {key: _select(cfg, key) for key in IDENTITY_KEYS}
    ident["augmentations"] = [(a.get("crop_size"), a.get("num_crops"))
                              for a in (cfg.get("augmentations") or []) if isinstance(a, Mapping)]
    teacher = ident["method_kwargs.teacher"]
    if isinstance(teacher, str) and Path(teacher).expanduser().exists():
        ident["teacher_file"] = file_fingerprint(find_checkpoint(Path(teacher).expanduser()))
    return json.loads(json.dumps(ident, default=str))  # as it reads back from identity.json


def first_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> Union[str, None]:
    """``key: old -> new`` for the first setting that differs, None when none does."""
    for key in [*IDENTITY_KEYS, "augmentations", "teacher_file"]:
        if old.get(key) != new.get(key):
            return f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
    return None


def read_identity(run_dir: Union[str, Path]) -> Union[Dict[str, Any], None]:
    path = Path(run_dir) / IDENTITY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


# --- which checkpoint a run resumes from ------------------------------------------------------

def checkpoint_problem(path: Union[str, Path]) -> Union[str, None]:
    """None when ``path`` opens as a Lightning checkpoint with its training state, else why not."""
    from seed_solo.state_dict import read_checkpoint

    try:
        ckpt = read_checkpoint(path, allow_inert_objects=True)
    except (OSError, ValueError) as err:
        return str(err)
    missing = [k for k in ("state_dict", "epoch", "global_step") if not
               (isinstance(ckpt, Mapping) and k in ckpt)]
    return f"{Path(path).name} lacks {', '.join(missing)}" if missing else None


def last_good_checkpoint(folder: Union[str, Path], log=print) -> Union[Path, None]:
    """The highest-epoch checkpoint of ``folder`` that opens and holds the training state;
    each one passed over is reported through ``log``."""
    for path in reversed(checkpoints(folder)):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        log(f"seed-solo: skipping {path}: {problem}")
    return None


def temp_files(folder: Union[str, Path]) -> List[Path]:
    """Temporary files an interrupted atomic write left in ``folder`` (:mod:`seed_solo.atomic`)."""
    return sorted(Path(folder).glob(".*.part"))
