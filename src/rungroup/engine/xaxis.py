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

import numpy as np
import polars as pl

from rungroup.engine.grouping import RUN_KEY, Grouping
from rungroup.runs import Runs
from rungroup.view import X_BUILTINS, View

#: The dtype of ``x`` in the output, per x choice (metrics and step/time are Float64).
TIMESTAMP_DTYPE = pl.Datetime("us", "UTC")


def output_x_dtype(view: View) -> pl.DataType:
    return TIMESTAMP_DTYPE if view.x == "timestamp" else pl.Float64()


def to_output_x(expr: pl.Expr, view: View) -> pl.Expr:
    if view.x == "timestamp":
        return expr.round(0).cast(pl.Int64).cast(TIMESTAMP_DTYPE)
    return expr


def select_metrics(runs: Runs, view: View) -> list[str]:
    """The metrics to aggregate, in the order asked for (all: sorted, minus the x metric)."""
    available = runs.metrics
    if view.x not in X_BUILTINS and view.x not in available:
        raise ValueError(
            f"x={view.x!r} is not valid; choose one of: {', '.join(X_BUILTINS)} or a metric: "
            f"{', '.join(available) or '(no metrics logged)'}"
        )
    if not view.metrics:
        return [m for m in available if m != view.x]
    unknown = [m for m in view.metrics if m not in available]
    if unknown:
        raise ValueError(
            f"unknown metric(s) {', '.join(map(repr, unknown))}; valid metrics: "
            f"{', '.join(available) or '(no metrics logged)'}"
        )
    return list(view.metrics)


def _codes(dtype: pl.DataType, wanted: list[str]) -> np.ndarray | None:
    """The categorical codes of `wanted` under `dtype` (None if `dtype` is not categorical).

    Categorical values of one dtype share one mapping, so the codes of `wanted` cast to the
    history's dtype are the codes the history uses; a lookup table then replaces a join.
    """
    if not isinstance(dtype, pl.Categorical):
        return None
    codes: np.ndarray = pl.Series(wanted, dtype=pl.String).cast(dtype).to_physical().to_numpy()
    return codes


def _lookup(codes: np.ndarray, wanted_codes: np.ndarray) -> np.ndarray:
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


def points(runs: Runs, view: View, grouping: Grouping, metrics: list[str]) -> pl.DataFrame:
    """The selected points: ``_r``, ``_m``, ``x``, ``v`` (collected, in the history's order)."""
    history = runs.history
    schema = history.collect_schema()
    run_ids = grouping.runs[RUN_KEY].to_list()
    run_codes = _codes(schema["run_id"], run_ids)
    metric_codes = _codes(schema["metric"], metrics)
    if view.x in X_BUILTINS and run_codes is not None and metric_codes is not None:
        # fast path: no join over millions of points, the order of the history is kept
        raw = (
            history.filter(pl.col("metric").is_in(metrics))
            .select(
                pl.col("run_id").to_physical().alias("r"),
                pl.col("metric").to_physical().alias("m"),
                _x_expression(view).alias("x"),
                pl.col("value").alias("v"),
            )
            .collect()
        )
        r = _lookup(raw["r"].to_numpy(), run_codes)
        m = _lookup(raw["m"].to_numpy(), metric_codes)
        frame = raw.select(
            pl.Series("_r", r, dtype=pl.Int64),
            pl.Series("_m", m, dtype=pl.Int64),
            "x",
            "v",
        )
        if bool(np.all(r >= 0)) and bool(np.isfinite(raw["x"].to_numpy()).all()):
            return frame
        return frame.filter((pl.col("_r") >= 0) & pl.col("x").is_finite())
    return _points_by_join(history, schema, view, grouping, metrics)


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
