"""The solo-learn gate: tests that need solo-learn 1.0.6 say so (CI always has it)."""

import importlib.util

import pytest

SOLO_MISSING = importlib.util.find_spec("solo") is None
needs_solo = pytest.mark.skipif(
    SOLO_MISSING,
    reason="solo-learn 1.0.6 is not installed: `make setup` installs it (README, Quickstart)",
)
