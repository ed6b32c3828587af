"""One writer at a time in a folder: ``filelock``'s ``flock`` on the folder's ``.lock`` file.

``flock`` reaches every process of a machine, and every node where the file system carries it
(a local disk, NFSv4; Lustre mounted with ``-o flock``). The lock file stays in place, so every
waiter locks the same file.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Iterator, Optional, Union

from filelock import FileLock, Timeout

from seed_solo.core.errors import ConfigError

LOCK = ".lock"


@contextlib.contextmanager
def folder_lock(folder: Union[str, Path], timeout: Optional[float] = None,
                busy: str = "", name: str = LOCK) -> Iterator[bool]:
    """Hold ``folder``'s lock while inside; yields True, or False for a folder where no lock
    file can be made (read-only: nobody can write there either).

    Args:
        timeout: seconds to wait for another holder; None waits as long as it takes.
        name: the lock file's name in ``folder`` (one folder may hold the locks of several
            things in it, ``<thing>.lock``).
        busy: with a ``timeout``, the sentence of the :class:`ConfigError` raised when it runs
            out (what holds the folder, and what to do).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        yield False
        return
    lock = FileLock(str(folder / name), timeout=-1 if timeout is None else timeout)
    try:
        lock.acquire()
    except Timeout as err:
        raise ConfigError(busy or f"{folder} is locked by another process; wait for it to "
                          "finish, or use another folder.") from err
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
