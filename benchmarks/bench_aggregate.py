"""Aggregation benchmark: rungroup.aggregate() against pandas and seaborn.

    .venv/bin/python benchmarks/bench_aggregate.py            # full size (10 M points)
    .venv/bin/python benchmarks/bench_aggregate.py --quick    # small, for a smoke run

1. 1,000 runs x 10,000 steps (10 M points) of one metric in 20 groups, held in memory;
   `rungroup.aggregate(runs, group_by="group", line="mean", band="std", align="bucket",
   points=1500)`: median wall time over cold calls (after one warm-up; `aggregate()` keeps
   nothing between calls), and the peak memory of a cold call above what the process held
   before it, next to the size of the input history. Also the warm case a widget meets: the
   same runs regrouped (by `config.seed`, then `group`) through one `engine.Workspace`, and
   runs hidden one more at a time in it, as the widget's eye does (`--widget-only`: these two
   warm cases alone).
2. The same computation hand-written in pandas (from a pandas frame already in memory):
   bin the steps, mean per (run, bin), then mean, std and count per (group, bin).
3. seaborn.lineplot(x="step", y="value", hue="group", errorbar="sd") on a 1 M point subset
   (100 runs x 10,000 steps), beside rungroup's exact (unbucketed) aggregate of that subset,
   and rungroup's default view (align="auto", points=1500) of the same subset.
4. The view of 1. with each run smoothed before aggregation (EMA weight 0.6, a window of 10
   points, a gaussian of sigma 20 steps): cold calls, and the peak memory of one. Also the
   gaussian over uneven x: x = relative time (0.1 s a step, not exactly evenly spaced as
   floats), sigma 2 s, which smooths pair by pair.

Memory is measured in a fresh process per repeat: Linux's peak RSS (VmHWM) is reset just
before the call (/proc/self/clear_refs) and read right after it.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

GROUPS = 20


def make_history(runs: int, steps: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Random-walk learning curves: `runs` runs x `steps` steps of one metric."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"run-{i:05d}" for i in range(runs)])
    drift = np.repeat(rng.normal(-1e-3, 5e-4, runs), steps)
    noise = rng.normal(0.0, 0.01, runs * steps)
    values = (drift + noise).reshape(runs, steps).cumsum(axis=1).ravel() + 2.0
    history = pl.DataFrame(
        {
            "run_id": pl.Series(np.repeat(ids, steps)).cast(pl.Categorical),
            "metric": pl.Series(["loss"], dtype=pl.Categorical).gather(
                np.zeros(runs * steps, dtype=np.int64)
            ),
            "step": np.tile(np.arange(steps, dtype=np.int64), runs),
            "time": np.tile(np.arange(steps, dtype=np.float64) * 0.1, runs),
            "value": values,
        }
    )
    table = pl.DataFrame(
        {
            "id": ids,
            "group": [f"setting-{i % GROUPS:02d}" for i in range(runs)],
            "config.seed": [i % 5 for i in range(runs)],
        }
    )
    return table, history


def runs_object(runs: int, steps: int) -> Any:
    import rungroup as rg

    table, history = make_history(runs, steps)
    return rg.Runs(table, history)


FIELDS: dict[str, Any] = {
    "group_by": ("group",),
    "line": "mean",
    "band": "std",
    "align": "bucket",
    "points": 1500,
}


def time_rungroup(runs: Any, repeats: int, **fields: Any) -> list[float]:
    """Cold calls: `aggregate()` makes its matrices afresh every time."""
    import rungroup as rg

    rg.aggregate(runs, **fields)  # warm-up
    timings = []
    for _ in range(repeats):
        gc.collect()
        began = time.perf_counter()
        rg.aggregate(runs, **fields)
        timings.append(time.perf_counter() - began)
    return timings


def time_warm(runs: Any, repeats: int, change: Any, **fields: Any) -> list[float]:
    """Warm calls, as a widget makes them: the same runs in one workspace, after a first
    call with `fields`, each call with `fields` changed by `change(i)`."""
    from rungroup.engine import Workspace

    with Workspace(runs) as workspace:
        workspace.aggregate(**fields)
        timings = []
        for i in range(repeats):
            gc.collect()
            began = time.perf_counter()
            workspace.aggregate(**{**fields, **change(i)})
            timings.append(time.perf_counter() - began)
    return timings


def time_regroup(runs: Any, repeats: int, **fields: Any) -> list[float]:
    """The grouping changed at each call."""
    groupings = [("config.seed",), ("group",)]
    return time_warm(runs, repeats, lambda i: {"group_by": groupings[i % 2]}, **fields)


def time_hide(runs: Any, repeats: int, **fields: Any) -> list[float]:
    """One more run hidden at each call, as the widget's eye does."""
    ids = list(runs.ids)
    return time_warm(runs, repeats, lambda i: {"hidden": frozenset(ids[: i + 1])}, **fields)


def pandas_bucketed(frame: Any, groups: Any, points: int) -> Any:
    """The equivalent computation, hand-written in pandas."""
    lo, hi = frame["step"].min(), frame["step"].max()
    width = (hi - lo) / points
    bins = ((frame["step"] - lo) / width).floordiv(1).clip(0, points - 1).astype("int64")
    per_run = frame.assign(bin=bins).groupby(["run_id", "bin"], observed=True)["value"].mean()
    per_run = per_run.reset_index().merge(groups, on="run_id")
    out = per_run.groupby(["group", "bin"], observed=True)["value"].agg(["mean", "std", "count"])
    out["lower"] = out["mean"] - out["std"]
    out["upper"] = out["mean"] + out["std"]
    return out


def pandas_bucketed_all(frame: Any, groups: Any, points: int) -> Any:
    """The same, computing what `aggregate()` computes: also median, min, max, quantiles,
    stderr and the t interval (the IQM is left out: pandas has no vectorised trimmed mean,
    so this still does less work than rungroup)."""
    from scipy import stats

    lo, hi = frame["step"].min(), frame["step"].max()
    width = (hi - lo) / points
    bins = ((frame["step"] - lo) / width).floordiv(1).clip(0, points - 1).astype("int64")
    per_run = frame.assign(bin=bins).groupby(["run_id", "bin"], observed=True)["value"].mean()
    per_run = per_run.reset_index().merge(groups, on="run_id")
    grouped = per_run.groupby(["group", "bin"], observed=True)["value"]
    out = grouped.agg(["mean", "std", "count", "median", "min", "max"])
    out["q_low"] = grouped.quantile(0.25)
    out["q_high"] = grouped.quantile(0.75)
    out["stderr"] = out["std"] / out["count"] ** 0.5
    half = stats.t.ppf(0.975, out["count"] - 1) * out["stderr"]
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    out["lower"] = out["mean"] - out["std"]
    out["upper"] = out["mean"] + out["std"]
    return out


def time_pandas(runs: int, steps: int, repeats: int, *, everything: bool = False) -> list[float]:
    table, history = make_history(runs, steps)
    frame = history.select("run_id", "step", "value").to_pandas()
    groups = table.rename({"id": "run_id"}).to_pandas()
    groups["run_id"] = groups["run_id"].astype(frame["run_id"].dtype)
    del table, history
    timings = []
    for _ in range(repeats):
        gc.collect()
        began = time.perf_counter()
        (pandas_bucketed_all if everything else pandas_bucketed)(frame, groups, FIELDS["points"])
        timings.append(time.perf_counter() - began)
    return timings


def time_seaborn(runs: int, steps: int, repeats: int) -> list[float]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    table, history = make_history(runs, steps)
    frame = history.select(pl.col("run_id").cast(pl.String), "step", "value").join(
        table.rename({"id": "run_id"}), on="run_id"
    )
    data = frame.to_pandas()
    timings = []
    for _ in range(repeats):
        figure, axes = plt.subplots()
        began = time.perf_counter()
        sns.lineplot(data=data, x="step", y="value", hue="group", errorbar="sd", ax=axes)
        timings.append(time.perf_counter() - began)
        plt.close(figure)
    return timings


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


#: Smoothing before aggregation, timed on the view of FIELDS.
SMOOTHINGS = {"EMA 0.6": ("ema", 0.6), "window 10": ("window", 10), "gaussian 20": ("gaussian", 20)}


def memory_child(runs: int, steps: int, smoothing: str | None = None) -> dict[str, float]:
    """In a fresh process: peak memory of one aggregate() call above the memory before it."""
    import rungroup as rg

    made = runs_object(runs, steps)
    input_bytes = made.history.collect().estimated_size()
    fields = dict(FIELDS)
    if smoothing is not None:
        fields["smoothing"], fields["smoothing_param"] = SMOOTHINGS[smoothing]
    rg.aggregate(made, **fields)  # warm-up: lazy imports (the next call is cold: keeps nothing)
    gc.collect()
    before = _vm("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    rg.aggregate(made, **fields)
    peak = _vm("VmHWM")
    return {"input_bytes": input_bytes, "peak_extra_bytes": peak - before}


def measure_memory(
    runs: int, steps: int, repeats: int, smoothing: str | None = None
) -> dict[str, float]:
    results = []
    child = ["--memory-child", str(runs), str(steps)]
    if smoothing is not None:
        child += ["--smoothing", smoothing]
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, __file__, *child],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "input_bytes": results[0]["input_bytes"],
        "peak_extra_bytes": statistics.median(r["peak_extra_bytes"] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--widget-only", action="store_true", help="only the warm regroup and hide cases"
    )
    parser.add_argument("--memory-child", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--smoothing", choices=list(SMOOTHINGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        print(json.dumps(memory_child(*args.memory_child, args.smoothing)))
        return
    runs, steps = (100, 1000) if args.quick else (1000, 10_000)
    subset_runs = max(1, runs // 10)
    repeats = args.repeats or (3 if args.quick else 7)
    points = runs * steps

    made = runs_object(runs, steps)
    if args.widget_only:
        regroup, hide = time_regroup(made, repeats, **FIELDS), time_hide(made, repeats, **FIELDS)
        print(
            f"{points / 1e6:g} M points, median of {repeats}: regrouped "
            f"{statistics.median(regroup):.3f} s, one more run hidden "
            f"{statistics.median(hide):.3f} s ({', '.join(f'{t:.3f}' for t in hide)})"
        )
        return
    ours = time_rungroup(made, repeats, **FIELDS)
    regroup = time_regroup(made, repeats, **FIELDS)
    hide = time_hide(made, repeats, **FIELDS)
    smoothed = {
        label: time_rungroup(
            made, max(3, repeats // 2), **FIELDS, smoothing=kind, smoothing_param=param
        )
        for label, (kind, param) in SMOOTHINGS.items()
    }
    uneven = time_rungroup(made, 1, **FIELDS, x="time", smoothing="gaussian", smoothing_param=2.0)
    del made
    gc.collect()
    pandas_times = time_pandas(runs, steps, max(3, repeats // 2))
    pandas_all_times = time_pandas(runs, steps, max(3, repeats // 2), everything=True)
    memory = measure_memory(runs, steps, 3)
    smoothed_memory = {label: measure_memory(runs, steps, 1, label) for label in SMOOTHINGS}
    subset = runs_object(subset_runs, steps)
    ours_subset = time_rungroup(
        subset, max(3, repeats // 2), group_by=("group",), band="std", align="exact", points=steps
    )
    ours_default = time_rungroup(subset, max(3, repeats // 2), group_by=("group",))
    del subset
    seaborn_times = time_seaborn(subset_runs, steps, 1 if not args.quick else 2)

    med = statistics.median
    subset_label = f"{subset_runs * steps / 1e6:g} M points"
    rows = [
        (
            f"rungroup.aggregate, {points / 1e6:g} M points, bucket {FIELDS['points']}, mean+std",
            med(ours),
        ),
        ("the same, regrouped (matrices kept from the call before)", med(regroup)),
        ("the same, one more run hidden (matrices kept with none hidden)", med(hide)),
        ("pandas groupby, mean/std/count only", med(pandas_times)),
        ("pandas groupby, the same statistics as aggregate() but IQM", med(pandas_all_times)),
        (f"rungroup.aggregate, {subset_label}, exact", med(ours_subset)),
        (f"seaborn.lineplot(errorbar='sd'), {subset_label}", med(seaborn_times)),
        (f"rungroup.aggregate, {subset_label}, default view (auto, 1500)", med(ours_default)),
        *(
            (f"the first, each run smoothed before: {label}", med(t))
            for label, t in smoothed.items()
        ),
        ("the first, x = relative time, gaussian sigma 2 s (uneven x)", med(uneven)),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'what':<{width}}  median seconds")
    for label, seconds in rows:
        print(f"{label:<{width}}  {seconds:9.3f}")
    print(f"speed-up over pandas (mean/std/count only): {med(pandas_times) / med(ours):.1f}x")
    print(f"speed-up over pandas (same statistics): {med(pandas_all_times) / med(ours):.1f}x")
    print(f"speed-up over seaborn: {med(seaborn_times) / med(ours_subset):.1f}x")
    print(
        f"input history: {memory['input_bytes'] / 2**20:.0f} MiB; peak extra memory during "
        f"aggregate(): {memory['peak_extra_bytes'] / 2**20:.0f} MiB "
        f"({memory['peak_extra_bytes'] / memory['input_bytes']:.2f}x the input)"
    )
    for label, measured in smoothed_memory.items():
        extra = measured["peak_extra_bytes"]
        print(
            f"peak extra memory, smoothed before ({label}): {extra / 2**20:.0f} MiB "
            f"({extra / measured['input_bytes']:.2f}x the input)"
        )
    print(f"all rungroup timings (s): {', '.join(f'{t:.3f}' for t in ours)}")


if __name__ == "__main__":
    main()
