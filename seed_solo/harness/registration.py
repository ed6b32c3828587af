"""``register()``: the ``seed`` and ``seed_mocov2`` methods and the students in solo-learn's
tables, explicitly.

solo-learn builds a method from ``solo.methods.METHODS[cfg.method]``, a plain dict: adding to it
needs no edit of solo-learn. The commands that train call :func:`register` before they build a
model; users of solo-learn's own scripts call it once at the top::

    from seed_solo.harness.registration import register
    register()
"""

from __future__ import annotations

from typing import Iterable

from solo.methods import METHODS

from seed_solo.harness.backbones import register_students
from seed_solo.harness.methods.seed import SEED
from seed_solo.harness.methods.seed_mocov2 import SEEDMoCoV2


def register(backbones: Iterable[str] = ()) -> None:
    """Add ``METHODS["seed"]``, ``METHODS["seed_mocov2"]`` and the students
    (:func:`register_students`, with the library models ``backbones`` names) to solo-learn.
    Idempotent."""
    METHODS.setdefault("seed", SEED)
    METHODS.setdefault("seed_mocov2", SEEDMoCoV2)
    register_students(backbones)
