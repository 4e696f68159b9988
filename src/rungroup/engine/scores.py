"""One score per run from its curve: what `compare()` tests and a performance profile counts.

`run_scores(runs, view, metric, reduce, ...)` reads the metric's points of the runs the view
selects, on the view's x axis (``step``, ``time``, ``timestamp`` or a metric, as `aggregate()`
places them), keeps the finite values at x <= `at` (all of them when `at` is None), gives a run
one value per x (the mean of its finite values there, as `aggregate()` does) and reduces the
curve, in x order, to one number:

- ``last``: the value at the largest x;
- ``best``: the minimum when lower is better, else the maximum;
- ``mean_last``: the mean of the values at the last `k` x values;
- ``auc``: the trapezoid area under the curve divided by the run's x range (the curve's mean
  height over it); a run with one point scores that value.

A run without a finite value at x <= `at` has no score (null).
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl

from rungroup.engine.grouping import Grouping
from rungroup.engine.xaxis import TIMESTAMP_UNITS_PER_SECOND, points, select_metrics
from rungroup.runs import Runs
from rungroup.view import Choice, View

#: How a run's curve becomes its score, in display order, with what each means (the
#: command's choices and the widget's Compare view read them; nothing else keeps a copy).
REDUCTION_TABLE: dict[str, Choice] = {
    choice.value: choice
    for choice in (
        Choice("last", "last", "The value at the largest x"),
        Choice("best", "best", "The minimum when lower is better, else the maximum"),
        Choice("mean_last", "mean of last k", "The mean of the values at the last k x values"),
        Choice(
            "auc",
            "area under the curve",
            "Trapezoid area under the curve divided by the run's x range (its mean height)",
        ),
    )
}
REDUCTIONS = tuple(REDUCTION_TABLE)


def x_limit(at: float | dt.datetime | None, view: View) -> float | None:
    """`at` as a number on the engine's x axis (timestamps: microseconds since the epoch)."""
    if at is None:
        return None
    if isinstance(at, dt.datetime):
        if view.x != "timestamp":
            raise ValueError(f"at={at!r} is a datetime, but x={view.x!r} is not 'timestamp'")
        moment = at if at.tzinfo is not None else at.replace(tzinfo=dt.timezone.utc)
        return moment.timestamp() * TIMESTAMP_UNITS_PER_SECOND
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise ValueError(f"at must be a finite number (an x value) or None, got {at!r}")
    if view.x == "timestamp":
        raise ValueError("with x='timestamp', at must be a datetime")
    return float(at)


def _score(reduce: str, k: int, higher_is_better: bool) -> pl.Expr:
    v = pl.col("v")
    if reduce == "last":
        return v.last()
    if reduce == "best":
        return v.max() if higher_is_better else v.min()
    if reduce == "mean_last":
        return v.tail(k).mean()
    x = pl.col("x")
    width = x.diff()
    area = (width * (v + v.shift(1)) / 2.0).sum()
    span = x.last() - x.first()
    return pl.when(span > 0).then(area / span).otherwise(v.first())


def run_scores(
    runs: Runs,
    view: View,
    grouping: Grouping,
    metric: str,
    reduce: str,
    *,
    k: int,
    at: float | None,
    higher_is_better: bool,
) -> pl.DataFrame:
    """``_r`` (the grouping's run index) and ``score`` (Float64) for every run with a score."""
    select_metrics(runs, view.replace(metrics=(metric,)))  # validates the metric and x
    finite = pl.col("v").is_finite().fill_null(False)
    if at is not None:
        finite = finite & (pl.col("x") <= at)
    frame = points(runs, view, grouping, [metric]).filter(finite).sort("_r", "x")
    repeated = (pl.col("_r") == pl.col("_r").shift()) & (pl.col("x") == pl.col("x").shift())
    if frame.select(repeated.any()).item():  # rare: one x logged twice by a run
        frame = frame.group_by("_r", "x").agg(pl.col("v").mean()).sort("_r", "x")
    return frame.group_by("_r", maintain_order=True).agg(
        _score(reduce, k, higher_is_better).cast(pl.Float64).alias("score")
    )
