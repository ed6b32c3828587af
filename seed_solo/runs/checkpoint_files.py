"""Checkpoint files and state dicts: read safely (weights only), load with every key checked.

Teachers and students alike go through here; it imports neither.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Mapping, Union

import torch
from torch import Tensor, nn

from seed_solo.core.errors import CheckpointError, MissingFileError

StateDict = Dict[str, Tensor]


class _Inert:
    """Stands in for any pickled global outside the allow-list: records, never runs, anything.

    solo-learn's Lightning checkpoints keep a ``functools.partial(static_lr, get_lr=<bound
    method>)`` inside ``lr_schedulers``, which ``weights_only=True`` refuses. The teacher needs
    only ``state_dict``, so the rest may unpickle into these placeholders.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert(*args)


def _allowed(module: str, name: str) -> bool:
    # exactly what a tensor-only pickle needs: tensor/storage rebuilders, dtypes, containers
    if module == "torch._utils" and name.startswith("_rebuild_"):
        return True
    if module == "torch" and (name.endswith("Storage") or name in ("Size", "device", "dtype")):
        return True
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return True
    if module == "collections" and name in ("OrderedDict", "defaultdict"):
        return True
    if module == "builtins" and name in ("set", "frozenset", "list", "dict", "tuple", "slice"):
        return True
    return module == "torch.nn.parameter" and name == "Parameter"


class _InertUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if _allowed(module, name):
            return super().find_class(module, name)
        return _Inert


class _InertPickleModule:
    """A ``pickle_module`` for ``torch.load`` whose unpickler imports nothing outside tensors."""

    Unpickler = _InertUnpickler
    load = pickle.load
    __name__ = "seed_solo_inert_pickle"


def read_checkpoint(path: Union[str, Path], allow_inert_objects: bool = False,
                    what: str = "checkpoint") -> Any:
    """Load ``path`` on the CPU with ``weights_only=True``.

    Args:
        path: a ``torch.save`` file.
        what: how errors name the file (``teacher checkpoint``).
        allow_inert_objects: when the weights-only load refuses a pickled object (a Lightning
            ``.ckpt`` of solo-learn holds ``functools.partial`` in its schedulers), load again
            with an unpickler that imports no code and turns every such object into an inert
            placeholder; tensors and containers load as usual.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file holds objects other than tensors and ``allow_inert_objects`` is off.
    """
    path = Path(path)
    check_readable(path, what)
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if not allow_inert_objects:
                raise CheckpointError(
                    f"{str(path)!r} holds pickled objects besides tensors, which weights_only=True "
                    f"refuses ({str(err).splitlines()[0]}); re-save its state_dict alone with "
                    "torch.save(ckpt['state_dict'], path) and load that."
                ) from err
        return torch.load(
            path, map_location="cpu", weights_only=False, pickle_module=_InertPickleModule
        )
    except (EOFError, RuntimeError) as err:  # a legacy (non-zip) file cut short, or corrupt
        raise CheckpointError(
            f"{what} {str(path)!r} could not be read ({str(err).splitlines()[0][:120]}); it is "
            "truncated or corrupt: fetch or copy it again."
        ) from err


_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80


def check_readable(path: Path, what: str = "checkpoint") -> None:
    """Refuse, by name and before torch sees it, a file that cannot be a whole checkpoint.

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty; a zip archive without its end (cut off while written or fetched);
            neither a zip archive nor a pickle (torch.save's two formats).
    """
    if not path.is_file():
        raise MissingFileError(f"{what} {str(path)!r} does not exist; pass an existing file.")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{what} {str(path)!r} is empty (0 bytes), the trace of a failed "
                              "download or copy; fetch or copy it again.")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == _ZIP_MAGIC:
        if not zipfile.is_zipfile(path):
            raise CheckpointError(
                f"{what} {str(path)!r} is truncated ({size} bytes, a zip archive without its "
                "end): it was cut off while written or fetched; fetch or copy it again.")
    elif head[0] != _PICKLE_PROTO:
        raise CheckpointError(f"{what} {str(path)!r} is not a PyTorch checkpoint (neither a zip "
                              "archive nor a pickle, as torch.save writes); check the path.")


def unwrap_state_dict(obj: Any,
                      keys: Iterable[str] = ("state_dict", "model", "module")) -> StateDict:
    """The tensor dict of a checkpoint: ``obj[k]`` for the first of ``keys`` there, else ``obj``."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"checkpoint holds a {type(obj).__name__}, expected a dict of tensors; save "
            "model.state_dict() rather than the model."
        )
    for k in keys:
        if k in obj and isinstance(obj[k], Mapping):
            return dict(obj[k])
    return dict(obj)


def strip_prefix(sd: Mapping[str, Tensor], prefix: str) -> StateDict:
    """Keys under ``prefix`` with it removed; other keys dropped."""
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _short(keys: Iterable[str], n: int = 8) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_exact(module: nn.Module, sd: Mapping[str, Tensor], what: str = "teacher",
               fmt: str | None = None, source_key: Callable[[str], str] | None = None) -> None:
    """Load ``sd`` into ``module`` requiring exactly its keys and shapes.

    Args:
        source_key: maps a key of ``module`` back to the checkpoint's own name for it, so that
            messages name keys as the user's file spells them.

    Raises:
        ValueError: naming the missing and unexpected keys, or the first shape mismatches.
    """
    expected = module.state_dict()
    name = source_key or (lambda k: k)
    missing = {name(k) for k in set(expected) - set(sd)}
    unexpected = {name(k) for k in set(sd) - set(expected)}
    hint = (f" Check the format (got {fmt!r}; pass teacher_format explicitly if auto-detection "
            "chose wrongly) or the architecture." if fmt else "")
    if missing or unexpected:
        raise CheckpointError(
            f"{what}: checkpoint keys do not fit the model: missing {len(missing)} "
            f"[{_short(missing)}], unexpected {len(unexpected)} [{_short(unexpected)}].{hint}"
        )
    bad = [
        f"{name(k)}: checkpoint {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if tuple(sd[k].shape) != tuple(v.shape)
    ]
    if bad:
        raise CheckpointError(
            f"{what}: {len(bad)} tensor shapes do not fit the model: {'; '.join(bad[:4])}.{hint}"
        )
    module.load_state_dict(sd, strict=True)


def load_prefixed(module: nn.Module, state: Mapping[str, Tensor], prefix: str, what: str) -> None:
    """Load the entries of ``state`` under ``prefix`` into ``module``, with every key checked.

    A wrong prefix would otherwise load nothing silently (solo-learn's main_linear loads with
    strict=False); here any missing or unexpected key is an error that names it.
    """
    sub = strip_prefix(state, prefix)
    if not sub:
        raise CheckpointError(
            f"no '{prefix}*' keys in the checkpoint for the {what}; found prefixes "
            f"{sorted({k.split('.')[0] for k in state})}. Is it a solo-learn/seed-solo checkpoint?"
        )
    load_exact(module, sub, what=what, source_key=lambda k: prefix + k)
