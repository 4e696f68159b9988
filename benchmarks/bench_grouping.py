"""Reverse grouping over thousands of config keys (issue #17).

    .venv/bin/python benchmarks/bench_grouping.py              # 1,000 runs x 5,000 keys
    .venv/bin/python benchmarks/bench_grouping.py --quick      # 200 runs x 1,000 keys

`rungroup.engine.grouping.group_runs(runs, View(reverse=True, group_by=()))`: every config key
is a key column (one in 50 takes 3 values, the others one). Median wall time of 5 calls, then
the same at twice the runs and at twice the keys, to show how it grows.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import polars as pl


def make_runs(n_runs: int, n_keys: int) -> object:
    import rungroup as rg

    rng = np.random.default_rng(0)
    columns: dict[str, object] = {"id": [f"r{i:05d}" for i in range(n_runs)]}
    for k in range(n_keys):
        varies = k % 50 == 0
        columns[f"config.k{k:05d}"] = (
            rng.integers(0, 3, n_runs) if varies else np.zeros(n_runs, dtype=np.int64)
        )
    history = pl.DataFrame({"run_id": ["r00000"], "metric": ["loss"], "step": [0], "value": [1.0]})
    return rg.Runs(pl.DataFrame(columns), history)


def time_reverse(n_runs: int, n_keys: int, repeats: int) -> float:
    import rungroup as rg
    from rungroup.engine.grouping import group_runs

    runs = make_runs(n_runs, n_keys)
    view = rg.View(reverse=True, group_by=())
    timings = []
    for _ in range(repeats):
        began = time.perf_counter()
        group_runs(runs, view)  # type: ignore[arg-type]
        timings.append(time.perf_counter() - began)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    runs, keys = (200, 1000) if arguments.quick else (1000, 5000)
    for n_runs, n_keys in ((runs, keys), (2 * runs, keys), (runs, 2 * keys)):
        seconds = time_reverse(n_runs, n_keys, arguments.repeats)
        print(f"reverse grouping, {n_runs:,} runs x {n_keys:,} config keys: {seconds:.3f} s")


if __name__ == "__main__":
    main()
