"""Writing a file so that a reader never sees it half-written: temp file, fsync, rename.

A place that cannot be written (a full disk, a read-only file system, no permission) is one
sentence naming the file and the setting to change (:func:`unwritable`), not a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any, Iterator, List, Optional, Union

from seed_solo.core.errors import ConfigError

#: errno -> why a place cannot be written, as a sentence's clause
_UNWRITABLE = {
    errno.ENOSPC: "no space is left on its device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file would be larger than its file system allows",
    errno.EROFS: "its file system is read-only",
    errno.EACCES: "permission is denied",
    errno.EPERM: "the operation is not permitted",
    errno.ENOTDIR: "a part of its path is a file, not a folder",
    errno.EEXIST: "a part of its path is a file, not a folder",  # mkdir of a folder's place
}
_PART = ".part"


def unwritable(err: BaseException, path: Union[str, os.PathLike],
               setting: str = "") -> Optional[ConfigError]:
    """The :class:`ConfigError` for an ``OSError`` that says ``path`` cannot be written, naming
    ``setting`` (``checkpoint.dir``) as what to change; None for any other error.

    The ``OSError`` may be the one an error was raised while handling: ``torch.save`` into a
    Python file reports a full disk as a ``RuntimeError`` raised during the ``OSError``.
    """
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _UNWRITABLE:
            where = f"choose another {setting}" if setting else "write it elsewhere"
            return ConfigError(f"cannot write {path}: {_UNWRITABLE[err.errno]}; free space or "
                               f"make it writable there, or {where}.")
        err = err.__cause__ or err.__context__
    return None


@contextlib.contextmanager
def atomic_path(dest: Union[str, os.PathLike], setting: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it is fsynced and renamed to ``dest``.

    The temporary file sits in ``dest``'s own folder (whatever ``TMPDIR`` is), so the rename
    never crosses file systems; on an exception it is deleted and ``dest`` is left as it was.
    A full, read-only or forbidden place raises :func:`unwritable`'s error (``setting``: what
    the user sets to choose the place).
    """
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}{_PART}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except (OSError, RuntimeError) as err:
        refused = unwritable(err, dest, setting)
        if refused is None:
            raise
        raise refused from err
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_json(path: Union[str, os.PathLike, None], payload: Any, setting: str = "") -> None:
    """``payload`` as indented JSON at ``path``, atomically; nothing when ``path`` is empty."""
    if not path:
        return
    with atomic_path(path, setting) as tmp:
        tmp.write_text(json.dumps(payload, indent=2))


def writer_pid(part: Union[str, os.PathLike]) -> Optional[int]:
    """The process id in the name of :func:`atomic_path`'s ``.<name>.<pid>.part``."""
    name = Path(part).name
    if not (name.startswith(".") and name.endswith(_PART)):
        return None
    pid = name[: -len(_PART)].rsplit(".", 1)[-1]
    return int(pid) if pid.isdigit() else None


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def torn_files(folder: Union[str, os.PathLike]) -> List[Path]:
    """:func:`atomic_path` temporary files in ``folder`` whose writer is gone: what a kill
    during a write left behind."""
    return [p for p in sorted(Path(folder).glob(f".*{_PART}"))
            if (pid := writer_pid(p)) is not None and pid != os.getpid() and not alive(pid)]
