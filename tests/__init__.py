"""The test suite: one folder per folder of the package, plus ``support`` (shared helpers)."""
