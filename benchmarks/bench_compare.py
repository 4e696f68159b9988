"""Comparing groups at scale: `rungroup.compare` over 10,000 runs in 50 groups.

    .venv/bin/python benchmarks/bench_compare.py
    .venv/bin/python benchmarks/bench_compare.py --quick    # 1,000 runs, a smoke run

10,000 runs x 100 steps of one metric (1 M points, held in memory) in 50 groups of 200 runs,
each run with a seed (0-199, so every run pairs with one run of the baseline). Timed, median
of 5 calls after a warm-up: `compare(runs, metric="acc", group_by="group",
baseline="setting-00", bootstrap_samples=2000)` (scores, per-group estimates and bootstrap
intervals, 49 comparisons with bootstrap intervals of the difference and of the probability
of improvement); the same with ``pair_by="config.seed"`` and ``test_train_ratio``; with
``reduce="auc"``; with the runs put into 50 groups of unequal sizes (each run's group drawn
at random: 32 distinct sizes, so 32 sets of resamples instead of one); and
`performance_profile` with 101 thresholds and 2000 resamples.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

import rungroup as rg

GROUPS, STEPS, SAMPLES = 50, 100, 2000


def runs_object(runs: int) -> rg.Runs:
    rng = np.random.default_rng(0)
    ids = np.array([f"run-{i:05d}" for i in range(runs)])
    group = np.arange(runs) % GROUPS
    # noisy learning curves whose plateau depends a little on the group
    plateau = 0.8 + 0.002 * group + rng.normal(0, 0.02, runs)
    curve = 1.0 - np.exp(-np.arange(STEPS) / 20.0)
    values = plateau[:, None] * curve[None, :] + rng.normal(0, 0.01, (runs, STEPS))
    history = pl.DataFrame(
        {
            "run_id": pl.Series(np.repeat(ids, STEPS)).cast(pl.Categorical),
            "metric": pl.Series(["acc"] * (runs * STEPS)).cast(pl.Categorical),
            "step": np.tile(np.arange(STEPS, dtype=np.int64), runs),
            "value": values.ravel(),
        }
    )
    table = pl.DataFrame(
        {
            "id": ids,
            "group": [f"setting-{g:02d}" for g in group],
            "config.seed": np.arange(runs) // GROUPS,
        }
    )
    return rg.Runs(table, history)


def median_seconds(call: Callable[[], Any], repeats: int = 5) -> float:
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    runs = runs_object(1000 if parser.parse_args().quick else 10_000)
    common = {"metric": "acc", "group_by": "group", "bootstrap_samples": SAMPLES}
    labels = np.random.default_rng(0).integers(0, GROUPS, len(runs))
    uneven = rg.Runs(
        runs.runs.with_columns(pl.Series("group", [f"setting-{g:02d}" for g in labels])),
        runs.history,
    )
    sizes = np.bincount(labels)
    cases: dict[str, Callable[[], Any]] = {
        "compare, baseline": lambda: rg.compare(runs, baseline="setting-00", **common),
        "compare, baseline, paired by seed + Nadeau-Bengio": lambda: rg.compare(
            runs, baseline="setting-00", pair_by="config.seed", test_train_ratio=0.25, **common
        ),
        "compare, baseline, reduce=auc": lambda: rg.compare(
            runs, baseline="setting-00", reduce="auc", **common
        ),
        "compare, baseline, groups of unequal size": lambda: rg.compare(
            uneven, baseline="setting-00", **common
        ),
        "performance_profile, 101 thresholds": lambda: rg.performance_profile(runs, **common),
    }
    print(f"{len(runs):,} runs x {STEPS} steps in {GROUPS} groups, {SAMPLES} resamples")
    print(f"unequal groups: {sizes.min()} to {sizes.max()} runs, {np.unique(sizes).size} sizes")
    for name, call in cases.items():
        print(f"{name}: {median_seconds(call) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
