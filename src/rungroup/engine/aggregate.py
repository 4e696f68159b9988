"""`aggregate(runs, view)`: the Aggregate frame of docs/architecture.md, one row per series point.

The steps, each in its own module: group the runs (`grouping`), pick x and the points
(`xaxis`), smooth each run (`smoothing`, ``smooth_order="before"``), align the runs of a series
(`align`), compute the statistics across runs (`stats`), drop points below ``min_runs``, derive
``line``/``lower``/``upper``, smooth those (``smooth_order="after"``), attach the keys and labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

import numpy as np
import polars as pl

from rungroup.engine import dense, dense_stats
from rungroup.engine.align import align, bucket_arrays, bucket_from_sums, is_sorted
from rungroup.engine.dense_matrix import Prepared
from rungroup.engine.grouping import RUN_KEY, Grouping
from rungroup.engine.provider import BucketSums, HistoryProvider
from rungroup.engine.smoothing import smooth
from rungroup.engine.stats import STAT_COLUMNS, line_and_band, statistics
from rungroup.engine.streaming import bucket_matrices
from rungroup.engine.xaxis import (
    output_x_dtype,
    point_arrays,
    points,
    select_metrics,
    to_output_x,
)
from rungroup.runs import Runs
from rungroup.view import View, drawn_statistics

#: The Aggregate columns after the key columns.
VALUE_COLUMNS = ("series", "metric", "x", "n", "dropped", "line", "lower", "upper", *STAT_COLUMNS)

#: Columns smoothed together with ``smooth_order="after"``.
SMOOTHED_AFTER = ("line", "lower", "upper", *STAT_COLUMNS)


def aggregate_schema(grouping: Grouping, view: View) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = dict(grouping.key_schema)
    schema.update(
        {
            "series": pl.String(),
            "metric": pl.String(),
            "x": output_x_dtype(view),
            "n": pl.Int64(),
            "dropped": pl.Int64(),
        }
    )
    for name in ("line", "lower", "upper", *STAT_COLUMNS):
        schema[name] = pl.Float64()
    return schema


def aggregate(
    runs: Runs, view: View | Mapping[str, Any] | None = None, **fields: Any
) -> pl.DataFrame:
    """Aggregate the runs' history per group (or per run), as the view says.

    Returns a `pl.DataFrame`: the key columns (the group-by columns, or ``run_id`` when grouping
    is off), ``series``, ``metric``, ``x``, ``n``, ``dropped``, ``line``, ``lower``, ``upper`` and
    the statistics ``mean, median, min, max, std, stderr, ci_low, ci_high, q_low, q_high, iqm``.
    Sorted by metric (in the order asked for), series, x. `rungroup.recipe_of(frame)` gives the
    `View` back. Unknown metrics or columns raise `ValueError` naming the valid ones.

    Keeps nothing: to aggregate the same runs again and again (another grouping, another
    band), hold a `rungroup.engine.Workspace` and call its `aggregate`.
    """
    if not isinstance(runs, Runs):
        raise TypeError(f"aggregate() takes a rungroup Runs, got {type(runs).__name__}")
    from rungroup.engine.workspace import Workspace

    with Workspace(runs) as workspace:
        return workspace.aggregate(view, **fields)


def aggregate_drawn(runs: Runs, view: View) -> pl.DataFrame:
    """What a chart of `aggregate(runs, view)` draws (`Workspace.aggregate_drawn`)."""
    from rungroup.engine.workspace import Workspace

    with Workspace(runs) as workspace:
        return workspace.aggregate_drawn(view)


def aggregate_grouping(
    runs: Runs,
    view: View,
    grouping: Grouping,
    *,
    drawn_only: bool = False,
    matrices: dense.Matrices | None = None,
    pool: Callable[[], Executor] | None = None,
    pushed: dict[tuple[Any, ...], BucketSums | Prepared | None] | None = None,
) -> pl.DataFrame:
    """The Aggregate of the series of `grouping` (the view's, over `runs`); `drawn_only`: its
    columns but the statistics, computing only those the line and the band are made of (the
    same rows and numbers for less work: a mean ± std band needs no sort of the runs at each
    point). `matrices` and `pool`: what the dense path keeps and runs in (`Workspace`);
    `pushed`: the per-run reductions a history provider answered, kept (`Workspace`)."""
    metrics = select_metrics(runs, view)
    schema = aggregate_schema(grouping, view)
    if drawn_only:
        schema = {name: dtype for name, dtype in schema.items() if name not in STAT_COLUMNS}
    wanted = drawn_statistics(view) if drawn_only else frozenset(STAT_COLUMNS)
    if not metrics or grouping.runs.height == 0:
        return pl.DataFrame(schema=schema)
    stats: pl.DataFrame | None = None
    if runs.provider is not None and view.align == "bucket" and not _smooths_runs(view):
        stats = _pushed_statistics(runs.provider, view, grouping, metrics, pushed, wanted, pool)
    if stats is None and dense.applies(view):
        kept = matrices if matrices is not None else dense.Matrices(runs)
        found = kept.prepared(view, grouping, metrics)
        if found is not None and dense.usable(found[0], view):
            made, slices = found
            stats = dense_stats.statistics(made, grouping, view, wanted, slices=slices, pool=pool)
    if stats is None:
        stats = _general_statistics(runs, view, grouping, metrics)
    if stats is None or stats.height == 0:
        return pl.DataFrame(schema=schema)
    return _finish(stats, view, grouping, metrics, schema)


def _smooths_runs(view: View) -> bool:
    return view.smoothing != "none" and view.smooth_order == "before"


def _pushed_statistics(
    provider: HistoryProvider,
    view: View,
    grouping: Grouping,
    metrics: list[str],
    pushed: dict[tuple[Any, ...], BucketSums | Prepared | None] | None,
    wanted: frozenset[str] = frozenset(STAT_COLUMNS),
    pool: Callable[[], Executor] | None = None,
) -> pl.DataFrame | None:
    """``align="bucket"`` from the provider's per-run bucket sums (engine/provider.py), or
    None when it cannot compute them. Asked once per (runs, metrics, x, points): a
    regrouping or another line or band reuses the answer kept in `pushed`."""
    ordered = grouping.runs.sort("_r")
    run_ids = ordered[RUN_KEY].cast(pl.String).to_list()
    key = (tuple(run_ids), tuple(metrics), view.x, view.points)
    if pushed is not None and key in pushed:
        kept = pushed[key]
        sums = kept if isinstance(kept, BucketSums) else None
    else:
        sums = provider.bucket_sums(run_ids, metrics, view.x, view.points)
        if pushed is not None:
            pushed[key] = sums
    if sums is None:
        return None
    n_metrics = len(metrics)
    run_rows = ordered["_r"].to_numpy().astype(np.int64)
    if dense.applies(view):
        # the per-run series as the dense path's matrices, made once per answer: a
        # regrouping is then a column reduction, with no sort of the sums
        matrices_key = ("matrices", *key)
        made = None if pushed is None else pushed.get(matrices_key)
        if not isinstance(made, Prepared):
            n_rows = int(run_rows.max()) + 1 if run_rows.size else 0
            made = bucket_matrices(sums, run_rows, n_rows, n_metrics)
            if pushed is not None:
                pushed[matrices_key] = made
        return dense_stats.statistics(made, grouping, view, wanted, pool=pool)
    run_index = run_rows[sums.run]
    keys = (run_index * n_metrics + sums.metric) * view.points + sums.bucket
    order = np.argsort(keys, kind="stable")
    aligned = bucket_from_sums(
        keys[order],
        sums.sums[order],
        sums.counts[order],
        sums.dropped[order],
        sums.lo,
        sums.width,
        grouping.members,
        view,
    )
    if aligned.height == 0:
        return pl.DataFrame()
    return statistics(aligned, view).filter(pl.col("n") >= view.min_runs)


def _general_statistics(
    runs: Runs, view: View, grouping: Grouping, metrics: list[str]
) -> pl.DataFrame | None:
    """Any x, alignment and smoothing: align the points as a frame, then reduce them."""
    smooth_runs = view.smoothing != "none" and view.smooth_order == "before"
    arrays = None
    if view.align == "bucket" and not smooth_runs:
        arrays = point_arrays(runs, view, grouping, metrics)
    if arrays is not None:  # the fast path: binned straight from numpy arrays
        aligned = bucket_arrays(arrays.r, arrays.m, arrays.x, arrays.v, grouping.members, view)
    else:
        logged = points(runs, view, grouping, metrics)
        if smooth_runs:
            logged = logged.sort("_r", "_m", "x", maintain_order=True)
            logged = smooth(logged, ["v"], ["_r", "_m"], view)
        aligned = align(logged, grouping.members, view)
    if aligned.height == 0:
        return None
    return statistics(aligned, view).filter(pl.col("n") >= view.min_runs)


def _finish(
    stats: pl.DataFrame,
    view: View,
    grouping: Grouping,
    metrics: list[str],
    schema: dict[str, pl.DataType],
) -> pl.DataFrame:
    """Line and band, smoothing after aggregation, then the keys and labels of the series."""
    stats = line_and_band(stats, view)
    if view.smoothing != "none" and view.smooth_order == "after":
        smoothed = [name for name in SMOOTHED_AFTER if name in stats.columns]  # each on its own
        stats = smooth(stats.sort("_m", "_s", "x"), smoothed, ["_m", "_s"], view)
    metric_names = pl.DataFrame(
        {"_m": list(range(len(metrics))), "metric": metrics},
        schema={"_m": pl.Int64, "metric": pl.String},
    )
    # the points come in (metric, series, x) order already (see align.py); check, not sort
    if not is_sorted(stats["_m"].to_numpy(), stats["_s"].to_numpy(), stats["x"].to_numpy()):
        stats = stats.sort("_m", "_s", "x")
    out = (
        stats.join(grouping.series, on="_s", how="left", maintain_order="left")
        .join(metric_names, on="_m", how="left", maintain_order="left")
        .with_columns(to_output_x(pl.col("x"), view).alias("x"))
    )
    return out.select(pl.col(name).cast(dtype) for name, dtype in schema.items())
