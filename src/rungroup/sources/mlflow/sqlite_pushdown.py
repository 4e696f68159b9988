"""An MLflow SQLite store (``mlflow.db``) as `Runs` whose history stays in the file, the bucket
push-down (engine/provider.py) computed by SQLite: ``rg.load("mlflow.db", pushdown=True)``.

The runs, params, tags and latest metrics are read by the SQLite reader (sqlite.py), the
metric history is not: `SqliteHistory` answers a view's per-run bucket sums with one
statement per metric, and `Runs.history` reads the points of the metrics a query selects
when it is collected (the views that need exact points: alignments other than `bucket`,
smoothing before aggregation).

It is the PostgreSQL push-down's statement (bucket_sql.py) in SQLite's dialect. What
differs: SQLite has no ``width_bucket`` and its JSON parser is not guaranteed to read a
double back exactly, so the bucket is the engine's own arithmetic (`engine.align.bin_index`:
a guess ``(x - lo) / span * bins``, then one bin down or up against numpy's linspace edges
``b * width + lo``, the last one ``hi``), every double bound as a parameter, one statement per
metric. MLflow's primary key ``(key, timestamp, step, run_uuid, value, is_nan)`` holds every
column of the table, so ``WHERE key = ?`` reads only that metric's part of the index. Rows the
SQLite reader skips (`sqlite.GOOD_POINT`) are left out the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rungroup.engine.provider import BucketSums
from rungroup.runs import Runs
from rungroup.sources.mlflow.bucket_sql import empty_sums
from rungroup.sources.mlflow.records import DBL_MAX, HISTORY_COLUMNS, timed_history
from rungroup.sources.mlflow.sqlite import (
    GOOD_POINT,
    METRIC_COLUMNS,
    _connect,
    _finish_history,
    _read_sqlite,
    _sqlite_path,
    metric_blocks,
)

__all__ = ["SqliteHistory", "load_sqlite_pushdown"]

#: The x of a point of the metric rows `m` (joined to its run `r` for `time`), as the
#: in-memory history computes it (`records.timed_history`).
X_SQL = {"step": "CAST(m.step AS REAL)", "time": "(m.timestamp - r.start_time) / 1000.0"}
FINITE = "(coalesce(is_nan, 0) = 0 AND value > -:dbl AND value < :dbl)"


def _points(x: str) -> str:
    """The points of metric :key of the runs :ids (a JSON array, numbered from 0): r, x,
    value, is_nan."""
    joined = (
        " JOIN runs r ON r.run_uuid = m.run_uuid AND r.start_time IS NOT NULL"
        if x == "time"
        else ""
    )
    return (
        f"SELECT ids.r AS r, {X_SQL[x]} AS x, m.value AS value, m.is_nan AS is_nan FROM "
        f"(SELECT run_uuid, step, timestamp, value, is_nan FROM metrics "
        f"WHERE key = :key AND {GOOD_POINT}) m{joined} "
        "JOIN (SELECT value AS id, key AS r FROM json_each(:ids)) ids ON ids.id = m.run_uuid"
    )


def _sums(x: str) -> str:
    guess = (
        "CASE WHEN :span > 0 THEN min(CAST((x - :lo) / :span * :bins AS INTEGER), :bins - 1) "
        "ELSE 0 END"
    )
    upper = "CASE WHEN g + 1 = :bins THEN :hi ELSE (g + 1) * :width + :lo END"
    bucket = (
        f"CASE WHEN :span > 0 THEN g - (x < g * :width + :lo) "
        f"+ (x >= {upper} AND g <> :bins - 1) ELSE 0 END"
    )
    return (
        f"SELECT r, {bucket} AS bucket, coalesce(sum(value) FILTER (WHERE {FINITE}), 0.0), "
        f"count(*) FILTER (WHERE {FINITE}), count(*) "
        f"FROM (SELECT r, x, value, is_nan, {guess} AS g FROM ({_points(x)})) GROUP BY 1, 2"
    )


class SqliteHistory:
    """The `HistoryProvider` of an MLflow SQLite store: per-run bucket sums in SQLite."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __repr__(self) -> str:
        return f"SqliteHistory({self._path})"

    def bucket_sums(
        self, run_ids: list[str], metrics: list[str], x: str, bins: int
    ) -> BucketSums | None:
        if x not in X_SQL:
            return None
        ids = json.dumps(run_ids)
        lo = np.full(len(metrics), np.nan)
        hi = np.full(len(metrics), np.nan)
        parts: list[tuple[int, list[tuple[Any, ...]]]] = []
        with contextlib.closing(_connect(self._path)) as connection:
            for k, key in enumerate(metrics):
                low, high = connection.execute(
                    f"SELECT min(x), max(x) FROM ({_points(x)})", {"key": key, "ids": ids}
                ).fetchone()
                if low is None:
                    continue
                lo[k], hi[k] = float(low), float(high)
                span = hi[k] - lo[k]
                parameters = {
                    "key": key,
                    "ids": ids,
                    "lo": lo[k],
                    "hi": hi[k],
                    "span": span,
                    "width": span / bins,  # numpy linspace's step
                    "bins": bins,
                    "dbl": DBL_MAX,
                }
                parts.append((k, connection.execute(_sums(x), parameters).fetchall()))
        if not parts:
            return empty_sums(lo, hi, bins, 0)
        frame = pl.concat(
            [
                pl.DataFrame(
                    rows,
                    schema={
                        "run": pl.Int64,
                        "bucket": pl.Int64,
                        "sums": pl.Float64,
                        "counts": pl.Int64,
                        "total": pl.Int64,
                    },
                    orient="row",
                ).with_columns(metric=pl.lit(k, pl.Int64))
                for k, rows in parts
            ]
        )
        counts = frame["counts"].to_numpy()
        return BucketSums(
            run=frame["run"].to_numpy(),
            metric=frame["metric"].to_numpy(),
            bucket=frame["bucket"].to_numpy(),
            sums=frame["sums"].to_numpy(),
            counts=counts,
            dropped=frame["total"].to_numpy() - counts,
            lo=lo,
            width=(hi - lo) / bins,
            received=int(frame.estimated_size()),
        )

    def points(self, metrics: list[str] | None, starts: dict[str, int | None]) -> pl.DataFrame:
        """The points (`HISTORY_SCHEMA`) of `metrics` (None: all) of the runs in `starts`."""
        query = f"SELECT {METRIC_COLUMNS} FROM metrics WHERE {GOOD_POINT}"
        arguments: tuple[str, ...] = ()
        if metrics is not None:
            query += " AND key IN (SELECT value FROM json_each(?))"
            arguments = (json.dumps(metrics),)
        with contextlib.closing(_connect(self._path)) as connection:
            blocks = metric_blocks(connection, self._path, query, *arguments)
        frame = (
            _finish_history(pl.concat(blocks))
            if blocks
            else pl.DataFrame(schema=HISTORY_COLUMNS).with_columns(
                pl.col("run_id", "metric").cast(pl.Categorical)
            )
        )
        return timed_history(frame.lazy(), starts).collect()


def load_sqlite_pushdown(
    source: str | os.PathLike[str],
    *,
    group_tag: str = "group",
    job_type_tag: str = "job_type",
    nested: bool = True,
    include_deleted: bool = False,
    experiments: list[str] | None = None,
    progress_bar: bool | None = None,
) -> Runs:
    """The runs of an MLflow SQLite store, the history left in the file (module docs)."""
    from rungroup.sources.mlflow.postgres import runs_of

    _ = progress_bar  # a load is a few SELECTs, with nothing to show
    path = _sqlite_path(os.fspath(source))
    if path is None or not path.is_file():
        raise FileNotFoundError(f"no MLflow SQLite database at {os.fspath(source)}")
    try:
        raw = _read_sqlite(path, include_deleted, with_history=False)
    except sqlite3.Error as error:
        raise ValueError(f"{path}: not a readable MLflow database ({error})") from error
    return runs_of(raw, SqliteHistory(path), group_tag, job_type_tag, nested, experiments)
