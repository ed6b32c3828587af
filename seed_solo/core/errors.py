"""Expected failures, reported as one line a user can act on instead of a traceback.

A bad path, a bad file, a bad config, bad data, a missing dependency or no network end an entry
point with ``error: <one sentence naming the file or key and the fix>`` on stderr and exit code
2. ``SEED_SOLO_DEBUG=1`` shows the full traceback instead.

Only the project's own types below are expected (:data:`EXPECTED`): code that meets a user's
mistake raises one of them, naming it. Anything else (a bare ``ValueError`` or ``KeyError``
from a library or from seed-solo itself) is a bug until shown otherwise: it keeps its traceback,
followed by one line saying how to report it, and exit code 1.
"""

from __future__ import annotations

import os
import sys
import traceback
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


#: what :func:`exit_on_expected` turns into one ``error:`` line: the project's own types only
EXPECTED = (UserError,)

#: the line after the traceback of an unexpected failure
REPORT = ("seed-solo: this failure is not one seed-solo expects, so it may be a bug: please "
          "report it to the seed-solo maintainers with the command you ran, the traceback above "
          "and the output of `pip freeze`.")


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
        names = (type(err).__name__, f"{type(err).__module__}.{type(err).__qualname__}")
        text = last.split(": ", 1)[1] if last.startswith(tuple(f"{n}:" for n in names)) else last
    return text


def report(err: BaseException) -> None:
    print(f"error: {message(err)}", file=sys.stderr)
    if not debug():
        print(f"(set {ENV_DEBUG}=1 for the full traceback)", file=sys.stderr)


def exit_on_expected(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``; an expected failure prints one line and exits with code 2, any
    other exception prints its traceback and :data:`REPORT` and exits with code 1."""
    try:
        return fn(*args, **kwargs)
    except EXPECTED as err:
        if debug():
            raise
        report(err)
        raise SystemExit(2) from None
    except Exception:
        traceback.print_exc()
        print(REPORT, file=sys.stderr)
        raise SystemExit(1) from None
