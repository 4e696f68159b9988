"""Test data and hand-written numpy/scipy references for the engine tests.

The references are deliberately naive (loops over series, runs and x values) so that they are
easy to check by reading; the engine must agree with them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import polars as pl
from hypothesis import strategies as st
from scipy import stats as sps

from rungroup.runs import Runs

TOL = 1e-12


def make_runs(
    runs: list[dict[str, Any]],
    points: list[tuple[str, str, int, float]],
    times: dict[tuple[str, int], float] | None = None,
) -> Runs:
    """Runs from run dicts and (run_id, metric, step, value) points."""
    history = pl.DataFrame(
        {
            "run_id": [p[0] for p in points],
            "metric": [p[1] for p in points],
            "step": [p[2] for p in points],
            "value": [p[3] for p in points],
        },
        schema={"run_id": pl.String, "metric": pl.String, "step": pl.Int64, "value": pl.Float64},
    )
    if times is not None:
        history = history.with_columns(
            pl.Series("time", [times.get((p[0], p[2])) for p in points], dtype=pl.Float64)
        )
    return Runs(pl.DataFrame(runs), history)


@st.composite
def run_sets(
    draw: st.DrawFn,
    max_runs: int = 6,
    max_steps: int = 12,
    non_finite: bool = True,
    shared_steps: bool = False,
    duplicates: bool = False,
) -> tuple[list[dict[str, Any]], list[tuple[str, str, int, float]]]:
    """A few runs in a few groups, each logging a subset of steps of one metric."""
    n_runs = draw(st.integers(1, max_runs))
    groups = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n_runs, max_size=n_runs))
    finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 3))
    value = (
        st.one_of(finite, finite, finite, st.sampled_from([math.nan, math.inf, -math.inf]))
        if non_finite
        else finite
    )
    common = sorted(draw(st.sets(st.integers(0, max_steps), min_size=1, max_size=max_steps)))
    runs = []
    points: list[tuple[str, str, int, float]] = []
    for i in range(n_runs):
        run_id = f"r{i}"
        runs.append({"id": run_id, "name": f"run {i}", "group": groups[i]})
        if shared_steps:
            steps = common
        else:
            steps = sorted(draw(st.sets(st.integers(0, max_steps), min_size=1, max_size=max_steps)))
        for step in steps:
            repeat = draw(st.integers(1, 2)) if duplicates else 1
            for _ in range(repeat):
                points.append((run_id, "loss", step, draw(value)))
    return runs, points


# --- references ---------------------------------------------------------------------------------


def reference_stats(values: list[float], view_quantiles=(0.25, 0.75), level=0.95) -> dict:
    """Every statistic of DESIGN.md over finite `values`, with numpy/scipy."""
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    out: dict[str, Any] = {"n": n}
    if n == 0:
        return out
    out["mean"] = float(np.mean(v))
    out["median"] = float(np.median(v))
    out["min"] = float(np.min(v))
    out["max"] = float(np.max(v))
    out["q_low"] = float(np.quantile(v, view_quantiles[0], method="linear"))
    out["q_high"] = float(np.quantile(v, view_quantiles[1], method="linear"))
    out["iqm"] = float(sps.trim_mean(v, 0.25))
    if n >= 2:
        std = float(np.std(v, ddof=1))
        out["std"] = std
        out["stderr"] = std / math.sqrt(n)
        t = float(sps.t.ppf((1 + level) / 2, n - 1))
        out["ci_low"] = out["mean"] - t * out["stderr"]
        out["ci_high"] = out["mean"] + t * out["stderr"]
    else:
        out["std"] = out["stderr"] = out["ci_low"] = out["ci_high"] = None
    return out


def per_run_points(points, metric="loss"):
    """run -> x -> (list of finite values, number of non-finite values)."""
    table: dict[str, dict[float, tuple[list[float], int]]] = defaultdict(dict)
    for run_id, m, step, value in points:
        if m != metric:
            continue
        finite, dropped = table[run_id].get(float(step), ([], 0))
        if math.isfinite(value):
            finite = [*finite, value]
        else:
            dropped += 1
        table[run_id][float(step)] = (finite, dropped)
    return table


def series_of(runs) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        out[run["group"] if run.get("group") is not None else "(missing)"].append(run["id"])
    return out


def capped(xs: list[float], points: int) -> list[float]:
    """The x values kept by the cap: ranks round_half_up(j (m-1) / (points-1))."""
    m = len(xs)
    if m <= points:
        return xs
    ranks = sorted({(2 * j * (m - 1) + (points - 1)) // (2 * (points - 1)) for j in range(points)})
    return [xs[r] for r in ranks]


def reference_exact(runs, points, points_cap=1500):
    """(series, x) -> (contributions, dropped) under exact alignment."""
    table = per_run_points(points)
    out = {}
    for label, members in series_of(runs).items():
        xs = sorted({x for r in members for x in table.get(r, {})})
        for x in capped(xs, points_cap):
            values, dropped = [], 0
            for r in members:
                if x in table.get(r, {}):
                    finite, d = table[r][x]
                    dropped += d
                    if finite:
                        values.append(float(np.mean(finite)))
            out[(label, x)] = (values, dropped)
    return out


def reference_interpolate(runs, points, points_cap=1500):
    table = per_run_points(points)
    out = {}
    for label, members in series_of(runs).items():
        knots = {}
        for r in members:
            if table.get(r):
                xs = sorted(table[r])
                vs = [float(np.mean(table[r][x][0])) if table[r][x][0] else math.nan for x in xs]
                knots[r] = (np.array(xs), np.array(vs), table[r])
        grid = sorted({float(x) for kx, _, _ in knots.values() for x in kx})
        for x in capped(grid, points_cap):
            values, dropped = [], 0
            for kx, kv, logged in knots.values():
                if not kx[0] <= x <= kx[-1]:
                    continue
                if x in logged:  # the run's own values, its non-finite ones counted as in exact
                    finite, d = logged[x]
                    dropped += d
                    if finite:
                        values.append(float(np.mean(finite)))
                    continue
                value = float(np.interp(x, kx, kv))
                if math.isfinite(value):
                    values.append(value)
                else:
                    dropped += 1
            out[(label, x)] = (values, dropped)
    return out


def reference_bucket(runs, points, bins):
    table = per_run_points(points)
    all_x = [x for r in table for x in table[r]]
    lo, hi = min(all_x), max(all_x)
    width = (hi - lo) / bins
    out = {}
    for label, members in series_of(runs).items():
        per_bin: dict[int, tuple[list[float], int]] = {}
        for r in members:
            sums: dict[int, list[float]] = defaultdict(list)
            drops: dict[int, int] = defaultdict(int)
            for x, (finite, d) in table.get(r, {}).items():
                # the bin numpy.histogram puts x in (edges from linspace; last bin closed)
                b = 0 if width == 0 else int(np.histogram([x], bins, (lo, hi))[0].argmax())
                sums[b].extend(finite)
                drops[b] += d
            for b in set(sums) | set(drops):
                values, dropped = per_bin.get(b, ([], 0))
                if sums[b]:
                    values = [*values, float(np.sum(sums[b]) / len(sums[b]))]
                per_bin[b] = (values, dropped + drops[b])
        for b, contribution in per_bin.items():
            x = lo if width == 0 else lo + (b + 0.5) * width
            out[(label, x)] = contribution
    return out


def close(a: float | None, b: float | None, scale: float = 1.0) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= TOL * max(1.0, abs(a), abs(b), scale)


def rows_by_point(frame: pl.DataFrame) -> dict[tuple[str, float], dict]:
    return {(row["series"], row["x"]): row for row in frame.iter_rows(named=True)}


def assert_same_frames(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Equal schemas, nulls and non-float columns; floats within TOL (the engine's two paths
    may round the last bit differently)."""
    assert got.schema == expected.schema
    assert got.height == expected.height
    for name in got.columns:
        a, b = got[name], expected[name]
        if a.dtype == pl.Float64:
            assert a.is_null().to_list() == b.is_null().to_list(), name
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=TOL, atol=TOL, err_msg=name)
        else:
            assert a.to_list() == b.to_list(), name


def final_values_reference(runs: Runs) -> pl.DataFrame:
    """Each run's value at its largest step of each metric (a null step counts as the
    smallest; of several values at one step the last logged), by a loop over the history:
    ``id`` and one ``m:<metric>`` column per metric of the runs."""
    last: dict[tuple[str, str], tuple[int, float | None]] = {}
    for run_id, metric, step, value in (
        runs.history.select("run_id", "metric", "step", "value").collect().iter_rows()
    ):
        rank = -(2**63) if step is None else step
        if (run_id, metric) not in last or rank >= last[run_id, metric][0]:
            last[run_id, metric] = (rank, value)
    ids = runs.runs["id"].to_list()
    return pl.DataFrame(
        {
            "id": pl.Series(ids, dtype=pl.Categorical()),
            **{
                f"m:{metric}": pl.Series(
                    [last.get((i, metric), (0, None))[1] for i in ids], dtype=pl.Float64
                )
                for metric in runs.metrics
            },
        }
    )
