"""Benchmarks: scripts that print figures and ratios measured side by side; run them from the
repository root as modules (``python -m benchmarks.bench_seed``)."""
