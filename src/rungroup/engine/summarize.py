"""`summarize(runs, view)`: one row per group, what the group rows of the runs table show.

Per group: the number of runs, their states, each config column's shared value (or how many
distinct values it takes, nulls counting as one), and for each metric a per-run reduction of
its finite values in step order (``last``, ``min``, ``max``, or ``mean_last``: the mean of the
last ``k``) aggregated over the group's runs: ``mean``, ``std`` (ddof = 1, null for one run),
``stderr``, ``min``, ``max`` and ``n`` (runs with a value).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from rungroup.engine.grouping import RUN_KEY, Grouping, group_runs
from rungroup.engine.xaxis import select_metrics
from rungroup.runs import RUN_STATES, Runs
from rungroup.view import View, resolve_view

REDUCTIONS = ("last", "min", "max", "mean_last")
#: The statistics of each metric, as ``<metric>.<statistic>`` columns.
METRIC_STATS = ("mean", "std", "stderr", "min", "max", "n")
#: Suffix of the column counting a config column's distinct values in a group.
VALUES_SUFFIX = ".values"


def _reduction(reduce: str, k: int) -> pl.Expr:
    value = pl.col("value")
    if reduce == "last":
        return value.last()
    if reduce == "min":
        return value.min()
    if reduce == "max":
        return value.max()
    return value.tail(k).mean()


def summarize(
    runs: Runs,
    view: View | Mapping[str, Any] | None = None,
    *,
    reduce: str = "last",
    k: int = 10,
    **fields: Any,
) -> pl.DataFrame:
    """One row per group (per run when grouping is off) of the runs the view selects.

    Columns: the key columns, ``series``, ``runs``, ``states`` (e.g. ``"3 finished, 1 failed"``),
    per config column its shared value (null where the group's runs differ) and
    ``<config>.values``, how many distinct values its runs have (a null counts), then
    ``<metric>.mean``, ``.std``, ``.stderr``, ``.min``, ``.max``, ``.n`` per metric.
    `reduce` picks the per-run value: ``last``, ``min``, ``max`` or ``mean_last`` (of the
    last `k` finite values).
    """
    if not isinstance(runs, Runs):
        raise TypeError(f"summarize() takes a rungroup Runs, got {type(runs).__name__}")
    view = resolve_view(view, **fields)
    select_metrics(runs, view)  # metrics and x are checked before group_by
    return summarize_grouping(runs, view, group_runs(runs, view), reduce=reduce, k=k)


def summarize_grouping(
    runs: Runs, view: View, grouping: Grouping, *, reduce: str = "last", k: int = 10
) -> pl.DataFrame:
    """`summarize` of the series of `grouping` (the view's, over `runs`)."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce={reduce!r} is not valid; choose one of: {', '.join(REDUCTIONS)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    metrics = select_metrics(runs, view)
    keys = list(grouping.key_columns)
    members = grouping.members
    series = grouping.series

    # The grouping numbers the runs (``_r``) in its own order; take its numbers, not row order.
    selected = runs.runs.join(
        grouping.runs.select(pl.col(RUN_KEY).alias("id"), "_r"), on="id", how="inner"
    )
    config = [c for c in runs.config_columns if c not in keys]

    counts = members.group_by("_s").agg(pl.len().cast(pl.Int64).alias("runs"))
    order = {state: i for i, state in enumerate(RUN_STATES)}
    states = (
        members.join(selected.select("_r", "state"), on="_r")
        .group_by("_s", "state")
        .agg(pl.len().alias("count"))
        .with_columns(
            pl.col("state")
            .replace_strict(order, default=len(order), return_dtype=pl.Int64)
            .alias("_o")
        )
        .sort("_s", "_o", "state", nulls_last=True)
        .group_by("_s", maintain_order=True)
        .agg(
            pl.format("{} {}", pl.col("count"), pl.col("state").fill_null("unknown"))
            .str.join(", ")
            .alias("states")
        )
    )
    out = series.join(counts, on="_s", how="left").join(states, on="_s", how="left")

    if config:
        shared = (
            members.join(selected.select("_r", *config), on="_r")
            .group_by("_s")
            .agg(
                expression
                for c in config
                for expression in (
                    # the shared value in the column's own type (null where the runs differ:
                    # a count in a config column would read as a value), and the count
                    pl.when(pl.col(c).n_unique() == 1).then(pl.col(c).first()).alias(c),
                    pl.col(c).n_unique().cast(pl.Int64).alias(f"{c}{VALUES_SUFFIX}"),
                )
            )
        )
        out = out.join(shared, on="_s", how="left")

    if metrics:
        schema = runs.history.collect_schema()
        finite = pl.col("value").is_finite().fill_null(False)
        ids = selected.select(pl.col("id").cast(schema["run_id"]).alias("run_id"), "_r")
        per_run = (
            runs.history.filter(pl.col("metric").is_in(metrics) & finite)
            .join(ids.lazy(), on="run_id", how="inner")
            .select("_r", pl.col("metric").cast(pl.String), "step", "value")
            .sort("_r", "metric", "step", maintain_order=True)
            .group_by("_r", "metric")
            .agg(_reduction(reduce, k).alias("value"))
            .collect()
        )
        v = pl.col("value")
        n = v.count().cast(pl.Int64)
        stats = (
            members.join(per_run, on="_r")
            .group_by("_s", "metric")
            .agg(
                v.mean().alias("mean"),
                pl.when(n >= 2).then(v.std(ddof=1)).alias("std"),
                v.min().alias("min"),
                v.max().alias("max"),
                n.alias("n"),
            )
            .with_columns((pl.col("std") / pl.col("n").cast(pl.Float64).sqrt()).alias("stderr"))
        )
        for metric in metrics:
            part = stats.filter(pl.col("metric") == metric).select(
                "_s", *(pl.col(s).alias(f"{metric}.{s}") for s in METRIC_STATS)
            )
            out = out.join(part, on="_s", how="left").with_columns(
                pl.col(f"{metric}.n").fill_null(0)
            )
    return out.sort("_s").drop("_s").with_columns(pl.col("runs").fill_null(0))
