"""Adapters that wire the core into solo-learn (imported only where solo-learn is installed)."""

from __future__ import annotations


def register() -> None:
    """Add ``METHODS["seed"]`` and the students to solo-learn, idempotently, editing no file."""
    from solo.methods.base import BaseMethod

    from seed_solo.students import register_with_solo

    register_with_solo(BaseMethod)
    # the module adds METHODS["seed"] once it has defined SEED; a plain module import (not
    # `from ... import SEED`) also works when seed.py's own `import solo` brought us here
    import seed_solo.methods.seed  # noqa: F401
