"""The x axis: which column of the history becomes ``x``, and the metrics to aggregate.

`points(runs, view, grouping)` returns the logged points of the selected runs and metrics as
``_r`` (run index), ``_m`` (metric index), ``x`` (Float64) and ``v`` (the value as logged,
NaN/inf/null kept). Points without a usable x (null or non-finite) cannot be placed on the axis
and are left out. Wall-clock timestamps travel as Float64 microseconds since the epoch and are
turned back into datetimes at the end (`to_output_x`).

Using a metric as x joins it to the other metrics on (run, step): each run's points of a metric
get the x value that the run logged for the x metric at the same step (the mean of its finite
values there, if it logged several).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from rungroup.engine.grouping import RUN_KEY, Grouping
from rungroup.runs import Runs
from rungroup.view import X_BUILTINS, View, check_against_runs

#: The dtype of ``x`` in the output, per x choice (metrics and step/time are Float64).
TIMESTAMP_DTYPE = pl.Datetime("us", "UTC")
#: Units of the Float64 ``x`` of timestamps per second.
TIMESTAMP_UNITS_PER_SECOND = 1e6


def output_x_dtype(view: View) -> pl.DataType:
    return TIMESTAMP_DTYPE if view.x == "timestamp" else pl.Float64()


def to_output_x(expr: pl.Expr, view: View) -> pl.Expr:
    if view.x == "timestamp":
        return expr.round(0).cast(pl.Int64).cast(TIMESTAMP_DTYPE)
    return expr


def select_metrics(runs: Runs, view: View) -> list[str]:
    """The metrics to aggregate, in the order asked for (all: sorted, minus the x metric)."""
    check_against_runs(view, runs, "x")
    check_against_runs(view, runs, "metrics")
    if not view.metrics:
        return [m for m in runs.metrics if m != view.x]
    return list(view.metrics)


def categorical_codes(dtype: pl.DataType, wanted: list[str]) -> np.ndarray | None:
    """The categorical codes of `wanted` under `dtype` (None if `dtype` is not categorical).

    Categorical values of one dtype share one mapping, so the codes of `wanted` cast to the
    history's dtype are the codes the history uses; a lookup table then replaces a join.
    """
    if not isinstance(dtype, pl.Categorical):
        return None
    codes: np.ndarray = pl.Series(wanted, dtype=pl.String).cast(dtype).to_physical().to_numpy()
    return codes


def code_positions(codes: np.ndarray, wanted_codes: np.ndarray) -> np.ndarray:
    """Position in the wanted list of every code (-1: not wanted)."""
    top = max(int(codes.max(initial=0)), int(wanted_codes.max(initial=0))) + 1
    table = np.full(top, -1, dtype=np.int64)
    table[wanted_codes] = np.arange(wanted_codes.size, dtype=np.int64)
    positions: np.ndarray = table[codes]
    return positions


def _x_expression(view: View) -> pl.Expr:
    if view.x == "step":
        return pl.col("step").cast(pl.Float64)
    if view.x == "time":
        return pl.col("time").cast(pl.Float64)
    return pl.col("timestamp").dt.epoch("us").cast(pl.Float64)


@dataclass(frozen=True)
class PointArrays:
    """The selected points as numpy arrays (the fast path for categorical histories)."""

    r: np.ndarray  # int64 run index
    m: np.ndarray | None  # int64 metric index; None when there is one metric
    x: np.ndarray  # float64
    v: np.ndarray  # float64, nulls as NaN

    def frame(self) -> pl.DataFrame:
        m = np.zeros(self.r.size, dtype=np.int64) if self.m is None else self.m
        return pl.DataFrame(
            [
                pl.Series("_r", self.r, dtype=pl.Int64),
                pl.Series("_m", m, dtype=pl.Int64),
                pl.Series("x", self.x, dtype=pl.Float64),
                pl.Series("v", self.v, dtype=pl.Float64),
            ]
        )


def point_arrays(
    runs: Runs, view: View, grouping: Grouping, metrics: list[str]
) -> PointArrays | None:
    """The selected points without a join: categorical codes are mapped through lookup tables.

    None when the fast path does not apply (x is a metric, or the history's run ids or
    metrics are not categorical); `points` then joins.
    """
    history = runs.history
    schema = history.collect_schema()
    run_codes = categorical_codes(schema["run_id"], grouping.runs[RUN_KEY].to_list())
    metric_codes = categorical_codes(schema["metric"], metrics)
    if view.x not in X_BUILTINS or run_codes is None or metric_codes is None:
        return None
    every_metric = len(metrics) == len(runs.metrics)
    selected = history if every_metric else history.filter(pl.col("metric").is_in(metrics))
    columns = [pl.col("run_id").to_physical().alias("r"), _x_expression(view).alias("x")]
    if len(metrics) > 1:
        columns.append(pl.col("metric").to_physical().alias("m"))
    raw = selected.select(*columns, pl.col("value").cast(pl.Float64).alias("v")).collect()
    r = code_positions(raw["r"].to_numpy(), run_codes)
    m = code_positions(raw["m"].to_numpy(), metric_codes) if len(metrics) > 1 else None
    x = raw["x"].to_numpy()
    v = raw["v"].to_numpy()
    keep = None
    if r.size and int(r.min()) < 0:  # points of runs that are not shown
        keep = r >= 0
    with np.errstate(invalid="ignore", over="ignore"):
        x_total = np.add.reduce(x)
    if not np.isfinite(x_total):  # some x is null or non-finite (rare)
        keep = np.isfinite(x) if keep is None else keep & np.isfinite(x)
    if keep is not None:
        r, x, v = r[keep], x[keep], v[keep]
        m = None if m is None else m[keep]
    return PointArrays(r, m, x, v)


def points(runs: Runs, view: View, grouping: Grouping, metrics: list[str]) -> pl.DataFrame:
    """The selected points: ``_r``, ``_m``, ``x``, ``v`` (collected, in the history's order)."""
    arrays = point_arrays(runs, view, grouping, metrics)
    if arrays is not None:
        return arrays.frame()
    history = runs.history
    return _points_by_join(history, history.collect_schema(), view, grouping, metrics)


def _points_by_join(
    history: pl.LazyFrame,
    schema: pl.Schema,
    view: View,
    grouping: Grouping,
    metrics: list[str],
) -> pl.DataFrame:
    id_map = grouping.runs.select(pl.col(RUN_KEY).cast(schema["run_id"]).alias("run_id"), "_r")
    metric_map = pl.DataFrame(
        {"metric": metrics, "_m": list(range(len(metrics)))},
        schema={"metric": pl.String, "_m": pl.Int64},
    ).with_columns(pl.col("metric").cast(schema["metric"]))
    # maintain_order: histories are usually stored run by run in step order; keeping that
    # order spares the alignment a sort of every point.
    selected = history.join(id_map.lazy(), on="run_id", how="inner", maintain_order="left")
    with_metric = selected.join(metric_map.lazy(), on="metric", how="inner", maintain_order="left")
    if view.x in X_BUILTINS:
        frame = with_metric.select(
            "_r", "_m", _x_expression(view).alias("x"), pl.col("value").alias("v")
        )
    else:
        finite = pl.col("value").is_finite()
        xs = (
            selected.filter((pl.col("metric") == view.x) & finite)
            .group_by("_r", "step")
            .agg(pl.col("value").mean().alias("x"))
        )
        frame = with_metric.join(xs, on=["_r", "step"], how="inner", maintain_order="left").select(
            "_r", "_m", "x", pl.col("value").alias("v")
        )
    frame = frame.filter(pl.col("x").is_finite())
    return frame.collect().with_columns(pl.col("_r").cast(pl.Int64), pl.col("_m").cast(pl.Int64))
