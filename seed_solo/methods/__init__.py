"""Adapters that wire the core into solo-learn (imported only where solo-learn is installed)."""

from __future__ import annotations

import sys


def register() -> None:
    """Add ``METHODS["seed"]`` and the students to solo-learn, idempotently, editing no file."""
    from solo.methods import METHODS
    from solo.methods.base import BaseMethod

    from seed_solo.backbones import register_with_solo

    register_with_solo(BaseMethod._BACKBONES)
    importing = sys.modules.get("seed_solo.methods.seed")
    if importing is not None and not hasattr(importing, "SEED"):
        # seed.py's own `import solo.methods` got us here: it registers SEED once defined
        return
    from seed_solo.methods.seed import SEED

    METHODS.setdefault("seed", SEED)
