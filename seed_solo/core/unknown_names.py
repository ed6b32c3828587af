"""The one "unknown name" message: what was asked for, what exists, the closest matches."""

from __future__ import annotations

import difflib
from typing import Iterable, List


def closest(name: str, known: Iterable[str], n: int = 3, cutoff: float = 0.6) -> List[str]:
    """Up to ``n`` names of ``known`` that look like ``name``, best first."""
    return difflib.get_close_matches(str(name), list(known), n=n, cutoff=cutoff)


def unknown_name(kind: str, name: str, known: Iterable[str], where: str = "",
                 cutoff: float = 0.6) -> str:
    """``unknown {kind} {name!r}; {where or the known names}. Did you mean ...?``

    Args:
        kind: what ``name`` should have named (``student backbone``, ``zoo teacher``).
        known: the valid names.
        where: how to list the valid names (``see `seed-solo zoo list```) when they are too many
            to print; empty prints them all.
    """
    known = sorted(known)
    listing = where or f"known: {', '.join(known)}"
    close = closest(name, known, cutoff=cutoff)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r}; {listing}.{hint}"
