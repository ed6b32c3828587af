"""Expected failures, reported as one line a user can act on instead of a traceback.

A bad path, a bad file, a bad config, bad data, a missing dependency or no network end an entry
point with ``error: <one sentence naming the file or key and the fix>`` on stderr and exit code
2. ``SEED_SOLO_DEBUG=1`` shows the full traceback instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, TypeVar

ENV_DEBUG = "SEED_SOLO_DEBUG"
T = TypeVar("T")


class UserError(Exception):
    """Base of the project's own expected failures: what a user can fix, said in one sentence.

    Raise one of the subclasses below (each is also the built-in error it stands for, so that
    callers catching ``ValueError`` or ``FileNotFoundError`` still catch it).
    """


class ConfigError(UserError, ValueError):
    """A setting, key, argument or value of the config or the command line that cannot work."""


class DataError(UserError, ValueError):
    """Data that cannot be used: images, data sets, label subsets, annotations, a cache."""


class CheckpointError(UserError, ValueError):
    """A checkpoint or weights file that cannot be used: unreadable, corrupt, keys that do not
    fit the model."""


class MissingFileError(UserError, FileNotFoundError):
    """A path that does not exist or is not the kind of file or folder asked for."""


class MissingDependencyError(UserError, ImportError):
    """An optional package a feature needs is not installed (the sentence says how to get it)."""


EXPECTED = (FileNotFoundError, NotADirectoryError, ValueError, KeyError, TypeError, ImportError,
            UserError)


def debug() -> bool:
    return os.environ.get(ENV_DEBUG, "").strip().lower() in ("1", "true", "yes", "on")


def message(err: BaseException) -> str:
    """The error's sentence: a KeyError's without the quotes ``str`` adds, and one raised in a
    DataLoader worker without the worker's traceback that torch puts in front of it."""
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    text = str(err) or type(err).__name__
    if "\nOriginal Traceback" in text:  # torch's ExceptionWrapper.reraise
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if last.startswith(type(err).__name__ + ":") else last
    return text


def report(err: BaseException) -> None:
    print(f"error: {message(err)}", file=sys.stderr)
    if not debug():
        print(f"(set {ENV_DEBUG}=1 for the full traceback)", file=sys.stderr)


def exit_on_expected(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``; an expected failure prints one line and exits with code 2."""
    try:
        return fn(*args, **kwargs)
    except EXPECTED as err:
        if debug():
            raise
        report(err)
        raise SystemExit(2) from None
