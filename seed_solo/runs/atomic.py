"""Writing a file so that a reader never sees it half-written: temp file, fsync, rename."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator, Union


@contextlib.contextmanager
def atomic_path(dest: Union[str, os.PathLike]) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it is fsynced and renamed to ``dest``.

    The temporary file sits in ``dest``'s own folder (whatever ``TMPDIR`` is), so the rename
    never crosses file systems; on an exception it is deleted and ``dest`` is left as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Union[str, os.PathLike, None], payload: Any) -> None:
    """``payload`` as indented JSON at ``path``, atomically; nothing when ``path`` is empty."""
    if not path:
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2))
