"""Runs already in memory: `from_frames(runs_df, history_df)` for pandas or Polars frames.

The history may be long (a run column, `metric`, `value` and optionally `step`, `time`,
`timestamp`) or wide (a run column, a step column and one column per metric, as pandas users
and seaborn's long-form tables have it). The helpers here also turn the wide tables that the
CSV and JSON-lines loader reads into history chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from rungroup.runs import CONFIG_PREFIX, HISTORY_SCHEMA, RUN_SCHEMA, SUMMARY_PREFIX, Runs
from rungroup.sources.runrecords import CHUNK_SCHEMA

__all__ = ["STEP_COLUMNS", "TIMESTAMP_COLUMNS", "TIME_COLUMNS", "from_frames", "wide_to_long"]

#: Step columns, in the order they are looked for (exact name, or the last part after '/').
STEP_COLUMNS = (
    "step",
    "global_step",
    "_step",
    "epoch",
    "iteration",
    "timesteps",
    "total_timesteps",
)
#: Relative time in seconds (SB3 writes `time/time_elapsed`, W&B `_runtime`).
TIME_COLUMNS = ("time", "time_elapsed", "_runtime", "runtime", "elapsed")
#: Wall-clock time in seconds since 1970.
TIMESTAMP_COLUMNS = ("timestamp", "_timestamp", "wall_time", "walltime")
#: Run columns, in the order they are looked for.
RUN_COLUMNS = ("run_id", "run", "id", "run_name")


def detect_column(columns: Iterable[str], candidates: Sequence[str]) -> str | None:
    """The first of `candidates` found among `columns`, exactly or as the part after '/'."""
    names = list(columns)
    for candidate in candidates:
        for name in names:
            if name == candidate or name.rsplit("/", 1)[-1] == candidate:
                return name
    return None


def to_polars(frame: Any) -> pl.DataFrame:
    """A Polars DataFrame from a Polars (lazy) frame or a pandas DataFrame."""
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    if isinstance(frame, pl.DataFrame):
        return frame
    if type(frame).__module__.startswith("pandas") and type(frame).__name__ == "DataFrame":
        if any(n is not None for n in frame.index.names):
            frame = frame.reset_index()
        return pl.from_pandas(frame)
    raise TypeError(f"expected a Polars or pandas DataFrame, got {type(frame).__name__}")


def _utc(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A datetime column in UTC microseconds (naive datetimes are taken as UTC)."""
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        expr = expr.dt.convert_time_zone("UTC")
    else:
        expr = expr.dt.replace_time_zone("UTC")
    return expr.cast(pl.Datetime("us", "UTC"))


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def wide_columns(
    frame: pl.DataFrame,
    run: pl.Expr,
    step: str | None,
    time: str | None,
    timestamp: str | None,
    metrics: Sequence[str],
) -> pl.DataFrame:
    """What every long form of a wide table is made of: `run_id` (the expression `run`), one
    Float64 column ``m:<metric>`` per metric, `time`, `timestamp` (UTC) and `step` (the row
    number per run without a step column; rows without a step left out), `time` taken from
    the timestamp when there is no time column."""
    if step is None:
        step_expr = pl.int_range(pl.len(), dtype=pl.Int64).over("run_id")
    else:
        step_expr = pl.col(step).cast(pl.Float64, strict=False).round().cast(pl.Int64)
    time_expr = (
        pl.col(time).cast(pl.Float64, strict=False)
        if time is not None
        else pl.lit(None, pl.Float64)
    )
    stamp_expr = pl.lit(None, pl.Datetime("us", "UTC"))
    if timestamp is not None:
        stamp = pl.col(timestamp)
        if frame.schema[timestamp].is_numeric():
            stamp = (stamp.cast(pl.Float64) * 1e6).round().cast(pl.Int64)
            stamp_expr = stamp.cast(pl.Datetime("us", "UTC"))
        elif isinstance(frame.schema[timestamp], pl.Datetime):
            stamp_expr = _utc(stamp, frame.schema[timestamp])
    base = frame.select(
        run.alias("run_id"),
        *[pl.col(m).cast(pl.Float64, strict=False).alias(f"m:{m}") for m in metrics],
        time_expr.alias("time"),
        stamp_expr.alias("timestamp"),
    )
    if step is None:
        base = base.with_columns(step_expr.alias("step"))
    else:
        base = base.with_columns(frame.select(step_expr.alias("step")).to_series())
        base = base.filter(pl.col("step").is_not_null())
    if time is None and timestamp is not None:
        first = pl.col("timestamp").min().over("run_id")
        base = base.with_columns(
            ((pl.col("timestamp") - first).dt.total_microseconds() / 1e6).alias("time")
        )
    return base


def wide_to_long(
    frame: pl.DataFrame,
    *,
    run: str | None,
    step: str | None,
    time: str | None = None,
    timestamp: str | None = None,
    metrics: Sequence[str] | None = None,
    run_id: str | None = None,
) -> pl.DataFrame:
    """A wide table (one column per metric) -> long chunk rows in `CHUNK_SCHEMA`.

    `run` names the run column, or `run_id` gives the one run of the whole table. Without a
    step column the points are numbered per run in row order; nulls (the sparse rows of
    Lightning's metrics.csv) are dropped, NaN and infinities are kept.
    """
    axes = {c for c in (run, step, time, timestamp) if c is not None}
    if metrics is None:
        metrics = [c for c, dtype in frame.schema.items() if c not in axes and _is_numeric(dtype)]
    run_expr = pl.lit(run_id, pl.String) if run is None else pl.col(run).cast(pl.String)
    base = wide_columns(frame, run_expr, step, time, timestamp, metrics)
    if not metrics:
        return pl.DataFrame(schema=CHUNK_SCHEMA)
    long = base.unpivot(
        on=[f"m:{m}" for m in metrics],
        index=["run_id", "step", "time", "timestamp"],
        variable_name="metric",
        value_name="value",
    ).filter(pl.col("value").is_not_null())
    return long.select(
        pl.col("run_id"),
        pl.col("metric").str.strip_prefix("m:"),
        pl.col("step"),
        pl.col("time"),
        pl.col("timestamp"),
        pl.col("value"),
    )


def from_frames(
    runs_df: Any = None,
    history_df: Any = None,
    *,
    run: str | None = None,
    step: str | None = None,
    time: str | None = None,
    timestamp: str | None = None,
    metric: str | None = None,
    value: str | None = None,
    metrics: Sequence[str] | None = None,
    config: Sequence[str] | None = None,
    source: str = "frames",
) -> Runs:
    """Runs from frames in memory (pandas or Polars).

    - `runs_df`: one row per run; its run column (`id`, `run_id`, `run` or `run_name`, or
      `run=`) becomes `id`; base columns (`name`, `group`, `job_type`, ...) and `config.*` /
      `summary.*` columns are kept; any other column becomes `config.<column>`.
    - `history_df`: long (a run column, `metric`, `value`, optional `step`, `time`,
      `timestamp`) or wide (a run column, a step column, one numeric column per metric). In a
      wide frame, the columns named in `config=` (by default: the non-numeric ones) describe
      the run and go to `config.*`; `metrics=` picks the metric columns.

    Without `runs_df` the runs are the distinct run ids of the history. Without `step`, points
    are numbered per run and metric in row order.
    """
    runs_frame = None if runs_df is None else to_polars(runs_df)
    history = None if history_df is None else to_polars(history_df)
    if runs_frame is None and history is None:
        raise TypeError("from_frames() needs runs_df, history_df or both")

    chunks = pl.DataFrame(schema=CHUNK_SCHEMA)
    run_attributes: pl.DataFrame | None = None
    if history is not None:
        run_col = run if run is not None and run in history.columns else None
        run_col = run_col or detect_column(history.columns, RUN_COLUMNS)
        if run_col is None:
            raise ValueError(
                f"history frame has no run column; name it with run=..., columns: {history.columns}"
            )
        step_col = step or detect_column([c for c in history.columns if c != run_col], STEP_COLUMNS)
        metric_col = metric or ("metric" if "metric" in history.columns else None)
        value_col = value or ("value" if "value" in history.columns else None)
        if metric_col is not None and value_col is not None:
            chunks = _long(history, run_col, step_col, time, timestamp, metric_col, value_col)
        else:
            time_col = time or detect_column(
                [c for c in history.columns if c not in (run_col, step_col)], TIME_COLUMNS
            )
            stamp_col = timestamp or detect_column(
                [c for c in history.columns if c not in (run_col, step_col)],
                TIMESTAMP_COLUMNS,
            )
            axes = {run_col, step_col, time_col, stamp_col}
            if config is None:
                attribute_cols = [
                    c
                    for c, dtype in history.schema.items()
                    if c not in axes and not _is_numeric(dtype)
                ]
            else:
                attribute_cols = list(config)
            if attribute_cols:
                run_attributes = history.group_by(run_col, maintain_order=True).agg(
                    pl.col(attribute_cols).drop_nulls().first()
                )
                run_attributes = run_attributes.rename({run_col: "id"}).with_columns(
                    pl.col("id").cast(pl.String)
                )
            chosen = (
                list(metrics)
                if metrics is not None
                else [
                    c
                    for c, dtype in history.schema.items()
                    if c not in axes and c not in attribute_cols and _is_numeric(dtype)
                ]
            )
            chunks = wide_to_long(
                history,
                run=run_col,
                step=step_col,
                time=time_col,
                timestamp=stamp_col,
                metrics=chosen,
            )

    runs = _runs_frame(runs_frame, run, run_attributes, chunks, source)
    history_out = chunks.with_columns(
        pl.col("run_id").cast(pl.Categorical), pl.col("metric").cast(pl.Categorical)
    ).select(list(HISTORY_SCHEMA))
    return Runs(runs, history_out.lazy())


def _long(
    history: pl.DataFrame,
    run_col: str,
    step_col: str | None,
    time_col: str | None,
    stamp_col: str | None,
    metric_col: str,
    value_col: str,
) -> pl.DataFrame:
    frame = history.select(
        pl.col(run_col).cast(pl.String).alias("run_id"),
        pl.col(metric_col).cast(pl.String).alias("metric"),
        (
            pl.col(step_col).cast(pl.Float64, strict=False).round().cast(pl.Int64)
            if step_col
            else pl.int_range(pl.len(), dtype=pl.Int64).over(run_col, metric_col)
        ).alias("step"),
        (pl.col(time_col).cast(pl.Float64) if time_col else pl.lit(None, pl.Float64)).alias("time"),
        (
            _utc(pl.col(stamp_col), history.schema[stamp_col])
            if stamp_col and isinstance(history.schema[stamp_col], pl.Datetime)
            else (pl.col(stamp_col).cast(pl.Float64) * 1e6)
            .round()
            .cast(pl.Int64)
            .cast(pl.Datetime("us", "UTC"))
            if stamp_col
            else pl.lit(None, pl.Datetime("us", "UTC"))
        ).alias("timestamp"),
        pl.col(value_col).cast(pl.Float64, strict=False).alias("value"),
    )
    return frame


def _runs_frame(
    runs_frame: pl.DataFrame | None,
    run: str | None,
    attributes: pl.DataFrame | None,
    chunks: pl.DataFrame,
    source: str,
) -> pl.DataFrame:
    ids_in_history = chunks.select(pl.col("run_id").unique(maintain_order=True)).to_series()
    if runs_frame is None:
        frame = pl.DataFrame({"id": ids_in_history})
    else:
        run_col = run if run is not None and run in runs_frame.columns else None
        run_col = run_col or ("id" if "id" in runs_frame.columns else None)
        run_col = run_col or detect_column(runs_frame.columns, RUN_COLUMNS)
        if run_col is None:
            raise ValueError(
                f"runs frame has no id column; name it with run=..., columns: {runs_frame.columns}"
            )
        frame = runs_frame.rename({run_col: "id"}) if run_col != "id" else runs_frame
        frame = frame.with_columns(pl.col("id").cast(pl.String))
        missing = ids_in_history.filter(~ids_in_history.is_in(frame["id"].implode()))
        if missing.len():
            frame = pl.concat([frame, pl.DataFrame({"id": missing})], how="diagonal_relaxed")
    if attributes is not None:
        frame = frame.join(attributes, on="id", how="left", suffix="__history")
    renames = {
        c: f"{CONFIG_PREFIX}{c}"
        for c in frame.columns
        if c not in RUN_SCHEMA and not c.startswith((CONFIG_PREFIX, SUMMARY_PREFIX))
    }
    frame = frame.rename(renames)
    if "source" not in frame.columns:
        frame = frame.with_columns(pl.lit(source).alias("source"))
    if not any(c.startswith(SUMMARY_PREFIX) for c in frame.columns) and chunks.height:
        from rungroup.sources.runrecords import last_values

        frame = frame.join(last_values(chunks), on="id", how="left")
    return frame
