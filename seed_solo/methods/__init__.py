"""Adapters that wire the core into solo-learn (imported only where solo-learn is installed)."""

from __future__ import annotations


def register() -> None:
    """Add ``METHODS["seed"]`` and the students to solo-learn, idempotently, editing no file."""
    from solo.methods import METHODS
    from solo.methods.base import BaseMethod

    from seed_solo.backbones import register_with_solo

    register_with_solo(BaseMethod._BACKBONES)
    from seed_solo.methods.seed import SEED

    METHODS.setdefault("seed", SEED)
