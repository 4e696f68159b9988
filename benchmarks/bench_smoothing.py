"""Smoothing at the widget's scale: what moving the smoothing slider costs the engine.

    .venv/bin/python benchmarks/bench_smoothing.py

1,000 runs x 1,000 steps x 4 metrics (4 M points, held in memory), grouped by a config key,
400 points per series (the widget's default): `aggregate_drawn` (what the widget's chart
needs) timed once with no smoothing (the history read), then for five strengths of each
smoothing in turn, each run smoothed before aggregation (what a slider drag asks for), then
regrouped with the last strength (the smoothed matrices kept).
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl

import rungroup as rg
from rungroup.engine.aggregate import aggregate_drawn

RUNS, STEPS, METRICS = 1000, 1000, ("a", "b", "c", "d")
STRENGTHS = {
    "ema": [0.5, 0.6, 0.7, 0.8, 0.9],
    "window": [5, 9, 15, 21, 31],
    "gaussian": [2, 4, 8, 16, 32],
}


def runs_object() -> rg.Runs:
    rng = np.random.default_rng(0)
    ids = np.array([f"run-{i:05d}" for i in range(RUNS)])
    per_run = STEPS * len(METRICS)
    history = pl.DataFrame(
        {
            "run_id": pl.Series(np.repeat(ids, per_run)).cast(pl.Categorical),
            "metric": pl.Series(np.tile(np.repeat(np.array(METRICS), STEPS), RUNS)).cast(
                pl.Categorical
            ),
            "step": np.tile(np.arange(STEPS), RUNS * len(METRICS)),
            "value": rng.normal(size=RUNS * per_run).cumsum(),
        }
    )
    table = pl.DataFrame(
        {
            "id": ids,
            "group": [f"g{i % 20}" for i in range(RUNS)],
            "config.lr": [i % 7 for i in range(RUNS)],
        }
    )
    return rg.Runs(table, history)


def milliseconds(runs: rg.Runs, view: rg.View) -> float:
    began = time.perf_counter()
    aggregate_drawn(runs, view)
    return (time.perf_counter() - began) * 1000


def main() -> None:
    runs = runs_object()
    base = {"group_by": ("config.lr",), "points": 400}
    print(f"no smoothing (history read): {milliseconds(runs, rg.View(**base)):.0f} ms")
    for kind, strengths in STRENGTHS.items():
        times = [
            milliseconds(runs, rg.View(**base, smoothing=kind, smoothing_param=strength))
            for strength in strengths
        ]
        regrouped = rg.View(
            group_by=("group",), points=400, smoothing=kind, smoothing_param=strengths[-1]
        )
        print(
            f"{kind} at {strengths}: {' '.join(f'{t:.0f}' for t in times)} ms; "
            f"regrouped: {milliseconds(runs, regrouped):.0f} ms"
        )


if __name__ == "__main__":
    main()
