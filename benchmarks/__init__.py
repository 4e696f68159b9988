"""Reproducible benchmarks; each bench_*.py runs on its own, `python -m benchmarks` runs all."""
