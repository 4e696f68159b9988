"""`aggregate(runs, view)`: the Aggregate frame of DESIGN.md, one row per series point.

The steps, each in its own module: group the runs (`grouping`), pick x and the points
(`xaxis`), smooth each run (`smoothing`, ``smooth_order="before"``), align the runs of a series
(`align`), compute the statistics across runs (`stats`), drop points below ``min_runs``, derive
``line``/``lower``/``upper``, smooth those (``smooth_order="after"``), attach the keys and labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from rungroup.engine import dense
from rungroup.engine.align import align, bucket_arrays, is_sorted
from rungroup.engine.grouping import Grouping, group_runs
from rungroup.engine.recipe import attach_recipe
from rungroup.engine.smoothing import smooth
from rungroup.engine.stats import STAT_COLUMNS, line_and_band, statistics
from rungroup.engine.xaxis import (
    output_x_dtype,
    point_arrays,
    points,
    select_metrics,
    to_output_x,
)
from rungroup.runs import Runs
from rungroup.view import View, drawn_statistics, resolve_view

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
    """
    if not isinstance(runs, Runs):
        raise TypeError(f"aggregate() takes a rungroup Runs, got {type(runs).__name__}")
    view = resolve_view(view, **fields)
    metrics = select_metrics(runs, view)
    grouping = group_runs(runs, view)
    schema = aggregate_schema(grouping, view)
    frame = _aggregate(runs, view, grouping, metrics, schema, frozenset(STAT_COLUMNS))
    return attach_recipe(frame, view)


def aggregate_drawn(runs: Runs, view: View) -> pl.DataFrame:
    """What a chart of `aggregate(runs, view)` draws: its rows with the key columns,
    ``series``, ``metric``, ``x``, ``n``, ``dropped``, ``line``, ``lower`` and ``upper`` only.

    The same rows and numbers, for less work: only the statistics that the line and the band
    are made of are computed (a mean ± std band needs no sort of the runs at each point)."""
    metrics = select_metrics(runs, view)
    grouping = group_runs(runs, view)
    schema = {
        name: dtype
        for name, dtype in aggregate_schema(grouping, view).items()
        if name not in STAT_COLUMNS
    }
    return _aggregate(runs, view, grouping, metrics, schema, drawn_statistics(view))


def _aggregate(
    runs: Runs,
    view: View,
    grouping: Grouping,
    metrics: list[str],
    schema: dict[str, pl.DataType],
    wanted: frozenset[str],
) -> pl.DataFrame:
    if not metrics or grouping.runs.height == 0:
        return pl.DataFrame(schema=schema)
    made = dense.prepared(runs, view, grouping, metrics) if dense.applies(view) else None
    if made is not None and dense.usable(made, view):
        stats: pl.DataFrame | None = dense.statistics(made, grouping, view, wanted)
    else:
        stats = _general_statistics(runs, view, grouping, metrics)
    if stats is None or stats.height == 0:
        return pl.DataFrame(schema=schema)
    return _finish(stats, view, grouping, metrics, schema)


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
