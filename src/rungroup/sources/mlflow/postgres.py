"""An MLflow backend store in PostgreSQL as `Runs`, its history left in the database.

Experiments, runs, params, tags and latest metrics are read in bulk as Arrow (ADBC's
PostgreSQL driver, one SELECT per table) and mapped to `Runs` by the SQLite reader's own
mapping (`mlflow.records.run_records`). The metric history is not read at load: the `Runs`
carries a `HistoryProvider` (`SqlHistory`) that sends a view's per-run reduction to the
database, and `Runs.history` is a lazy frame that reads the metrics a query selects only
when it is collected.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import polars as pl
from polars.io.plugins import register_io_source

from rungroup.engine.provider import BucketSums, HistoryProvider
from rungroup.runs import HISTORY_SCHEMA, Runs
from rungroup.sources.mlflow.bucket_sql import empty_sums, range_query, sums_query
from rungroup.sources.mlflow.database import Database
from rungroup.sources.mlflow.records import (
    DBL_MAX,
    MAX_MS,
    MIN_MS,
    RUN_COLUMNS,
    _Raw,
    _value,
    add_run,
    run_records,
)
from rungroup.sources.mlflow.sqlite import run_row
from rungroup.sources.runrecords import assemble, warn

__all__ = ["SqlHistory", "load_postgres"]

#: the memory the GROUP BY of a push-down may use before spilling (about 100 bytes a group:
#: 1,000 runs x 1,500 buckets fit)
WORK_MEM = "256MB"
#: Connections a per-run push-down spreads the runs over (each is a server process).
PER_RUN_CONNECTIONS = 2
#: Whether `metrics` has an index that leads with `run_uuid` (MLflow's own
#: `(run_uuid, key, step)`): each run's rows are then read through it (`sums_query(per_run)`).
_RUN_INDEX = (
    "SELECT count(*) > 0 AS found FROM pg_index i JOIN pg_attribute a "
    "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
    "WHERE i.indrelid = 'metrics'::regclass AND a.attname = 'run_uuid'"
)


def _x_sql(x: str) -> str | None:
    """The SQL of x for the metric row `m` joined to its run `r`, as the in-memory history
    computes it (`mlflow.records.timed_history`), or None when x is not pushed down."""
    if x == "step":
        return "m.step::float8"
    if x == "time":
        return "(m.timestamp - r.start_time)::float8 / 1000.0"
    return None


class SqlHistory:
    """The `HistoryProvider` of an MLflow store in PostgreSQL: per-run bucket sums in SQL."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._per_run: bool | None = None

    def __repr__(self) -> str:
        return f"SqlHistory({self._database.name})"

    def bucket_sums(
        self, run_ids: list[str], metrics: list[str], x: str, bins: int
    ) -> BucketSums | None:
        x_sql = _x_sql(x)
        if x_sql is None:
            return None
        runs_json, metrics_json = json.dumps(run_ids), json.dumps(metrics)
        with self._database.connect() as reader:
            # the big GROUP BY's hash table in memory, not spilled to disk in batches
            # (settings local to this read-only transaction)
            reader.select("SELECT set_config('work_mem', $1, true)", (WORK_MEM,))
            ranges = reader.select(range_query(x, x_sql), (runs_json, metrics_json))
            received = ranges.nbytes
            position = {name: i for i, name in enumerate(metrics)}
            lo = np.full(len(metrics), np.nan)
            hi = np.full(len(metrics), np.nan)
            for key, low, high in zip(
                ranges.column("key").to_pylist(),
                ranges.column("lo").to_pylist(),
                ranges.column("hi").to_pylist(),
                strict=True,
            ):
                if low is not None:
                    lo[position[key]], hi[position[key]] = low, high
            present = [i for i in range(len(metrics)) if np.isfinite(lo[i])]
            if not present:
                return empty_sums(lo, hi, bins, received)
            if self._per_run is None:
                self._per_run = bool(reader.select(_RUN_INDEX).column("found")[0].as_py())
            per_run = self._per_run
            query, parameters = sums_query(x_sql, x, present, lo, hi, bins, per_run=per_run)
            if not per_run:
                table = reader.select(query, (runs_json, metrics_json, DBL_MAX, *parameters))
                frame, size = _frame(table), table.nbytes
        if per_run:
            frame, size = self._per_run_sums(run_ids, metrics_json, query, parameters)
        received += size
        counts = frame["counts"].cast(pl.Int64).to_numpy()
        return BucketSums(
            run=frame["run"].cast(pl.Int64).to_numpy(),
            metric=frame["metric"].cast(pl.Int64).to_numpy(),
            bucket=frame["bucket"].cast(pl.Int64).to_numpy(),
            sums=frame["sums"].fill_null(0.0).to_numpy(),
            counts=counts,
            dropped=frame["total"].cast(pl.Int64).to_numpy() - counts,
            lo=lo,
            width=(hi - lo) / bins,
            received=received,
        )

    def _per_run_sums(
        self, run_ids: list[str], metrics_json: str, query: str, parameters: tuple[str, ...]
    ) -> tuple[pl.DataFrame, int]:
        """The per-run statement over the runs split in contiguous parts, one connection
        each, in threads (the driver lets go of the GIL while the server works), the parts'
        run positions made positions in `run_ids` again; and the bytes received."""
        parts = max(1, min(PER_RUN_CONNECTIONS, len(run_ids)))
        bounds = np.linspace(0, len(run_ids), parts + 1).astype(int)

        def part(start: int, end: int) -> tuple[pl.DataFrame, int]:
            with self._database.connect() as reader:
                reader.select("SELECT set_config('work_mem', $1, true)", (WORK_MEM,))
                ids = json.dumps(run_ids[start:end])
                table = reader.select(query, (ids, metrics_json, DBL_MAX, *parameters))
            frame = _frame(table).with_columns(pl.col("run") + start)
            return frame, table.nbytes

        with ThreadPoolExecutor(parts, thread_name_prefix="rungroup-sql") as pool:
            answers = list(pool.map(part, bounds[:-1], bounds[1:]))
        return pl.concat([frame for frame, _ in answers]), sum(size for _, size in answers)

    def points(self, metrics: list[str] | None, starts: dict[str, int | None]) -> pl.DataFrame:
        """The raw points (`HISTORY_SCHEMA`) of `metrics` (None: all) of the runs in `starts`."""
        query = (
            "SELECT m.run_uuid AS run_id, m.key AS metric, m.step AS step, "
            "m.timestamp AS timestamp_ms, m.value AS value, m.is_nan AS is_nan "
            f"FROM metrics m WHERE m.timestamp BETWEEN {MIN_MS} AND {MAX_MS}"
        )
        parameters: tuple[Any, ...] = ()
        if metrics is not None:
            query += " AND m.key IN (SELECT jsonb_array_elements_text($1::jsonb))"
            parameters = (json.dumps(metrics),)
        with self._database.connect() as reader:
            table = reader.select(query, parameters)
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        start_frame = pl.DataFrame(
            {"run_id": list(starts), "start_ms": list(starts.values())},
            schema={"run_id": pl.String, "start_ms": pl.Int64},
        )
        value = (
            pl.when(pl.col("is_nan"))
            .then(float("nan"))
            .when(pl.col("value") >= DBL_MAX)
            .then(float("inf"))
            .when(pl.col("value") <= -DBL_MAX)
            .then(float("-inf"))
            .otherwise(pl.col("value"))
        )
        return frame.join(start_frame, on="run_id", how="inner", maintain_order="left").select(
            pl.col("run_id").cast(pl.Categorical),
            pl.col("metric").cast(pl.Categorical),
            pl.col("step").cast(pl.Int64),
            ((pl.col("timestamp_ms") - pl.col("start_ms")) / 1000).alias("time"),
            (pl.col("timestamp_ms") * 1000).cast(pl.Datetime("us", "UTC")).alias("timestamp"),
            value.cast(pl.Float64).alias("value"),
        )


class PointsProvider(HistoryProvider, Protocol):
    """A history provider that also reads the points themselves (`SqlHistory`,
    sqlite_pushdown.`SqliteHistory`): the views that need exact points."""

    def points(self, metrics: list[str] | None, starts: dict[str, int | None]) -> pl.DataFrame: ...


def _lazy_history(
    provider: PointsProvider, names: list[str], starts: dict[str, int | None]
) -> pl.LazyFrame:
    """`Runs.history`: read from the database when collected; a filter on the metric alone
    (the engine's ``metric.is_in(...)``) is sent to the database."""

    def batches(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        wanted: list[str] | None = None
        if predicate is not None and predicate.meta.root_names() == ["metric"]:
            table = pl.DataFrame({"metric": pl.Series(names, dtype=pl.Categorical)})
            kept = table.select(predicate).to_series()
            wanted = [n for n, keep in zip(names, kept, strict=True) if keep]
        frame = provider.points(wanted, starts)
        if predicate is not None:
            frame = frame.filter(predicate)
        if with_columns is not None:
            frame = frame.select(with_columns)
        if n_rows is not None:
            frame = frame.head(n_rows)
        yield frame

    return register_io_source(
        batches, schema=HISTORY_SCHEMA, is_pure=True, explain_name="MLflow metrics in SQL"
    )


def _frame(table: Any) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _rows(reader: Any, query: str) -> list[tuple[Any, ...]]:
    table = reader.select(query)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(zip(*columns, strict=True))


def read_postgres(database: Database, include_deleted: bool) -> _Raw:
    """Experiments, runs, params, tags and latest metrics (MLflow keeps one row per logged
    metric of a run there), not the history."""
    raw = _Raw(source=f"mlflow:{database.name}")
    with database.connect() as reader:
        tables = reader.tables()
        missing = [t for t in ("experiments", "runs") if t not in tables]
        if missing:
            raise ValueError(f"{database.name}: not an MLflow database (no table {missing[0]!r})")
        for experiment_id, name, stage in _rows(
            reader,
            "SELECT experiment_id::text, name, lifecycle_stage FROM experiments",
        ):
            if include_deleted or stage != "deleted":
                raw.experiments[str(experiment_id)] = name
        for row in _rows(reader, f"SELECT {RUN_COLUMNS} FROM runs ORDER BY start_time, run_uuid"):
            run = run_row(row, raw.experiments, include_deleted)
            if run is not None:
                add_run(raw, run, f"{database.name}: table runs, run {row[0]}")
        kept = {r["run_id"] for r in raw.runs}
        for table, target in (("params", raw.params), ("tags", raw.tags)):
            if table not in tables:
                warn(database.name, f"no table {table}; runs loaded without {table}")
                continue
            for run_id, key, value in _rows(reader, f"SELECT run_uuid, key, value FROM {table}"):
                if run_id in kept:
                    target.setdefault(run_id, {})[key] = value
        if "latest_metrics" in tables:
            for run_id, key, value, is_nan in _rows(
                reader, "SELECT run_uuid, key, value, is_nan FROM latest_metrics"
            ):
                if run_id in kept:
                    raw.latest.setdefault(run_id, {})[key] = _value(value, is_nan)
    return raw


def load_postgres(
    uri: str,
    *,
    group_tag: str = "group",
    job_type_tag: str = "job_type",
    nested: bool = True,
    include_deleted: bool = False,
    experiments: list[str] | None = None,
    timeout: float = 60.0,
    progress_bar: bool | None = None,
) -> Runs:
    """Load the runs of an MLflow backend store in PostgreSQL (``postgresql://``,
    ``postgresql+psycopg://``, ``postgresql+psycopg2://``); the history stays in the
    database (module docs). `timeout`: seconds any one statement may take. `progress_bar`
    is accepted as every source accepts it; a load is five SELECTs, with nothing to show."""
    _ = progress_bar
    database = Database.from_uri(uri, timeout)
    raw = read_postgres(database, include_deleted)
    return runs_of(raw, SqlHistory(database), group_tag, job_type_tag, nested, experiments)


def runs_of(
    raw: _Raw,
    provider: PointsProvider,
    group_tag: str,
    job_type_tag: str,
    nested: bool,
    experiments: list[str] | None,
) -> Runs:
    """The `Runs` of what was read (mapped as the SQLite reader maps it), the history left
    with `provider`."""
    if experiments is not None:
        wanted = set(experiments)
        kept = {k: v for k, v in raw.experiments.items() if v in wanted}
        raw = replace(
            raw, experiments=kept, runs=[r for r in raw.runs if r["experiment_id"] in kept]
        )
    records, starts = run_records(raw, group_tag, job_type_tag, nested)
    names = sorted({key for run in raw.runs for key in raw.latest.get(run["run_id"], {})})
    table = assemble(records, [], parse_strings=True)
    runs = Runs(
        table.runs,
        _lazy_history(provider, names, starts),
        validate=False,
        provider=provider,
    )
    runs._metrics = tuple(names)  # known without reading the history (as the store does)
    return runs
