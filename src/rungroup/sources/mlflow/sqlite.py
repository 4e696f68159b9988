"""MLflow's SQLite store (MLflow 3's default), read with one query per table (never one per
run or metric) and without the `mlflow` package.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from rungroup.sources.mlflow.records import (
    DBL_MAX,
    HISTORY_COLUMNS,
    MAX_MS,
    MIN_MS,
    RUN_COLUMNS,
    _number,
    _Raw,
    _shown,
    _value,
    add_run,
    point_problem,
)
from rungroup.sources.runrecords import (
    warn,
)

# --- detection ------------------------------------------------------------------------------


def _sqlite_path(source: str | Path) -> Path | None:
    text = str(source)
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///") :])
    path = Path(text)
    if path.is_dir() and (path / "mlflow.db").is_file():
        return path / "mlflow.db"
    if path.is_file() and path.suffix in (".db", ".sqlite", ".sqlite3"):
        with path.open("rb") as handle:
            if handle.read(16) == b"SQLite format 3\x00":
                return path
    return None


def _has_mlflow_tables(path: Path) -> bool:
    try:
        with _connect(path) as connection:
            names = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error:
        return False
    return set(REQUIRED_TABLES) <= names


def _connect(path: Path) -> sqlite3.Connection:
    # Read-only: nothing is written into the database, not even a journal. (A database in
    # WAL mode gets its -wal and -shm files back if MLflow left none, as with any reader:
    # `immutable=1` would avoid them but reads torn pages if MLflow checkpoints meanwhile.)
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True)


# --- SQLite ---------------------------------------------------------------------------------

#: The metric rows MLflow writes; any other row is skipped with a warning (`bad_metric_rows`).
GOOD_POINT = (
    "typeof(run_uuid) = 'text' AND typeof(key) = 'text' AND typeof(step) = 'integer' "
    f"AND typeof(timestamp) = 'integer' AND timestamp BETWEEN {MIN_MS} AND {MAX_MS} "
    "AND (typeof(value) IN ('integer', 'real') OR coalesce(is_nan, 0) != 0)"
)
METRIC_COLUMNS = "run_uuid, key, step, timestamp, value, is_nan"
_METRICS_QUERY = f"SELECT {METRIC_COLUMNS} FROM metrics WHERE {GOOD_POINT}"
#: Tables without which a database is not an MLflow store; the others are optional.
REQUIRED_TABLES = ("experiments", "runs")


def decoded(rows: list[tuple[Any, ...]], path: Path, table: str) -> list[tuple[Any, ...]]:
    """Rows read with `text_factory=bytes` (first column the rowid), their text decoded; a
    row holding text that is not UTF-8 is skipped, with one warning naming the table, the
    first such row and their number."""
    out: list[tuple[Any, ...]] = []
    bad: list[int] = []
    for row in rows:
        try:
            out.append(tuple(c.decode("utf-8") if isinstance(c, bytes) else c for c in row))
        except UnicodeDecodeError:
            bad.append(row[0])
    if bad:
        warn(
            path,
            f"table {table}, row {bad[0]}: text that is not UTF-8; {len(bad)} such row(s) skipped",
        )
    return out


def table_rows(
    connection: sqlite3.Connection, path: Path, table: str, query: str, *args: Any
) -> list[tuple[Any, ...]]:
    """The decoded rows of one query on `table` (a `text_factory=bytes` connection). A table
    that is missing or cannot be read is an error when MLflow cannot do without it
    (`REQUIRED_TABLES`), else a warning and no rows."""
    try:
        rows = connection.execute(query, args).fetchall()
    except sqlite3.Error as error:
        if table in REQUIRED_TABLES:
            raise ValueError(f"{path}: not a readable MLflow database ({error})") from error
        warn(path, f"table {table} not read ({error})")
        return []
    return decoded(rows, path, table)


def bad_metric_rows(
    connection: sqlite3.Connection, path: Path, where: str = "1", *args: Any
) -> None:
    """Warn about the metric rows (among those matching `where`) that `GOOD_POINT` skips:
    the first one, why, and how many there are."""
    count, first = connection.execute(
        "SELECT count(*), min(rowid) FROM metrics "
        f"WHERE ({where}) AND NOT coalesce(({GOOD_POINT}), 0)",
        args,
    ).fetchone()
    if not count:
        return
    run_type, key_type, step, stamp, value, is_nan = connection.execute(
        "SELECT typeof(run_uuid), typeof(key), step, timestamp, value, is_nan FROM metrics "
        "WHERE rowid = ?",
        (first,),
    ).fetchone()
    _ = is_nan
    run_type, key_type = (t.decode() if isinstance(t, bytes) else t for t in (run_type, key_type))
    if run_type != "text" or key_type != "text":
        why = f"run_uuid is {run_type}, key is {key_type}"
    else:
        why = point_problem(step, stamp, value) or "not a metric point"
    warn(path, f"table metrics, row {first}: {why}; {count} such row(s) skipped")


def _read_sqlite(path: Path, include_deleted: bool, with_history: bool = True) -> _Raw:
    raw = _Raw(source=f"mlflow:sqlite:{path}")
    try:
        connection = _connect(path)
        connection.text_factory = bytes
        tables = {
            n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
            for (n,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    except sqlite3.Error as error:
        raise ValueError(f"{path}: not a readable MLflow database ({error})") from error
    try:
        missing = [t for t in REQUIRED_TABLES if t not in tables]
        if missing:
            raise ValueError(f"{path}: not an MLflow database (no table {missing[0]!r})")
        for _, experiment_id, name, stage in table_rows(
            connection,
            path,
            "experiments",
            "SELECT rowid, experiment_id, name, lifecycle_stage FROM experiments",
        ):
            if include_deleted or stage != "deleted":
                raw.experiments[str(experiment_id)] = name
        for rowid, *row in table_rows(
            connection, path, "runs", f"SELECT rowid, {RUN_COLUMNS} FROM runs"
        ):
            run = run_row(tuple(row), raw.experiments, include_deleted)
            if run is not None:
                add_run(raw, run, f"{path}: table runs, row {rowid}")
        kept = {r["run_id"] for r in raw.runs}
        for table, target in (("params", raw.params), ("tags", raw.tags)):
            if table not in tables:
                warn(path, f"no table {table}; runs loaded without {table}")
                continue
            for _, run_id, key, value in table_rows(
                connection, path, table, f"SELECT rowid, run_uuid, key, value FROM {table}"
            ):
                if run_id in kept:
                    target.setdefault(run_id, {})[key] = value
        if "latest_metrics" not in tables:
            warn(path, "no table latest_metrics; summaries are the history's last values")
        for rowid, run_id, key, value, is_nan in (
            table_rows(
                connection,
                path,
                "latest_metrics",
                "SELECT rowid, run_uuid, key, value, is_nan FROM latest_metrics",
            )
            if "latest_metrics" in tables
            else []
        ):
            if run_id not in kept:
                continue
            if _number(value) is None and not is_nan:
                warn(
                    path,
                    f"table latest_metrics, row {rowid}: value {_shown(value)} is not a "
                    "number; skipped",
                )
                continue
            raw.latest.setdefault(run_id, {})[key] = _value(value, is_nan)
        if not with_history:  # sqlite_pushdown.py: the history stays in the file
            return raw
        if "metrics" not in tables:
            warn(path, "no table metrics; runs loaded without history")
            return raw
        history = _metrics_table(connection, path)
        if history is not None:
            present = set(history["run_id"].unique().cast(pl.String).to_list())
            if not present <= kept:  # metrics of deleted runs, or of runs of deleted experiments
                history = history.filter(pl.col("run_id").cast(pl.String).is_in(list(kept)))
            raw.history.append(history)
    finally:
        connection.close()
    return raw


def _metrics_table(connection: sqlite3.Connection, path: Path) -> pl.DataFrame | None:
    """The metric points (`GOOD_POINT` rows; the others are warned about), or None with a
    warning when the table cannot be read."""
    try:
        # Fast: the whole table as Arrow, taken only when every row is a point MLflow writes.
        history = _adbc_history(path, f"SELECT {METRIC_COLUMNS} FROM metrics", checked=True)
        if history is not None:
            return history
        history = _adbc_history(path, _METRICS_QUERY)
        if history is None:
            history = _sqlite_history(connection, path)
        # count(*) needs no row decoded: the scan for bad rows runs only when there are some.
        if connection.execute("SELECT count(*) FROM metrics").fetchone()[0] != history.height:
            bad_metric_rows(connection, path)
    except sqlite3.Error as error:
        warn(path, f"table metrics not read ({error}); runs loaded without history")
        return None
    return history


def _adbc_history(path: Path, query: str, *, checked: bool = False) -> pl.DataFrame | None:
    """The metrics of `query` through ADBC's SQLite driver (Arrow, no Python object per
    cell), when `adbc-driver-sqlite` is installed (`rungroup[mlflow]`); None otherwise, and
    when the text is not all UTF-8 (the standard library reader then says where). With
    `checked` (an unfiltered query), None too unless every row is a `GOOD_POINT`: the
    driver then fails on a cell of another type than its column's first ones, and the
    types, nulls and time range are checked here."""
    try:
        from adbc_driver_sqlite import dbapi
    except ImportError:
        return None
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    try:
        parts = _in_parts(dbapi, uri, query, checked)  # each finished in its thread (`_fetch`)
    except Exception:  # any driver trouble: the standard library reads it instead
        return None
    if any(part is None for part in parts):
        return None
    # A range with no rows (a gap in the rowids) has no types the driver could infer
    kept = [part for part in parts if part is not None and part.height]
    if not kept:
        return None  # no rows at all: the standard library reader says so at no cost
    return pl.concat(kept) if len(kept) > 1 else kept[0]


#: Below this many rows the metrics table is read in one query (threads would cost more).
SPLIT_ROWS = 100_000
#: Rows of each Arrow batch the driver returns (`_fetch`).
BATCH_ROWS = 1 << 18
BATCH_ROWS_OPTION = "adbc.sqlite.query.batch_rows"


def _in_parts(dbapi: Any, uri: str, query: str, checked: bool) -> list[pl.DataFrame | None]:
    """The finished frames of `query` (`_fetch`), fetched by ranges of rowid on a connection
    each, in threads (the driver and Polars let go of the GIL: two cores fetch 5 M rows in
    half the time), in rowid order as one scan returns them."""
    with dbapi.connect(uri) as connection, connection.cursor() as cursor:
        # one aggregate each: SQLite answers a lone min() or max() from the rowid b-tree
        cursor.execute("SELECT (SELECT min(rowid) FROM metrics), (SELECT max(rowid) FROM metrics)")
        low, high = cursor.fetchone()
    workers = max(1, min(4, os.cpu_count() or 1))
    if low is None or high - low < SPLIT_ROWS or workers == 1:
        return [_fetch(dbapi, uri, query, (), checked)]
    joiner = " AND " if " WHERE " in query else " WHERE "
    ranged = f"{query}{joiner}rowid BETWEEN ? AND ?"
    bounds = [low + (high - low + 1) * i // workers for i in range(workers + 1)]
    ranges = [(bounds[i], bounds[i + 1] - 1) for i in range(workers)]
    ranges[-1] = (ranges[-1][0], high)
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda span: _fetch(dbapi, uri, ranged, span, checked), ranges))


def _fetch(
    dbapi: Any, uri: str, query: str, parameters: tuple[int, ...], checked: bool
) -> pl.DataFrame | None:
    """One range's rows as a finished history frame (`_finish_history`), all of it done in
    the fetching thread: Arrow and Polars let go of the GIL, so the two ranges' conversions
    run side by side instead of one after the other once both are fetched. None when the
    range cannot be taken as it is (see `_adbc_history`); an empty frame for no rows.

    The run ids and keys (the first two columns) are dictionary-encoded by Arrow: categories
    built from the dictionary cost less than Polars casting 5 M strings."""
    import pyarrow as pa  # type: ignore[import-untyped]  # adbc-driver-manager's dependency
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    with dbapi.connect(uri) as connection, connection.cursor() as cursor:
        # Batches of 1,024 rows (the driver's default) make a 5 M row table of 4,900 chunks,
        # and Arrow's checks, its dictionaries and Polars' conversion pay per chunk: 0.5 s of
        # CPU more than with 20 chunks; the fetch itself costs the same.
        with contextlib.suppress(Exception):  # a driver without it: its own batches
            cursor.adbc_statement.set_options(**{BATCH_ROWS_OPTION: str(BATCH_ROWS)})
        cursor.execute(query, parameters or None)
        table = cursor.fetch_arrow_table()
    if not table.num_rows:
        return pl.DataFrame()
    # ADBC hands SQLite's text over unchecked; invalid UTF-8 would crash Polars later
    table.validate(full=True)
    for i in range(min(2, table.num_columns)):
        field = table.schema.field(i)
        if pa.types.is_string(field.type):
            table = table.set_column(i, field.name, pc.dictionary_encode(table.column(i)))
    frame = pl.from_arrow(table)
    if not isinstance(frame, pl.DataFrame) or frame.width != 6:
        return None
    frame.columns = ["run_id", "metric", "step", "timestamp_ms", "value", "is_nan"]
    if checked and not _all_good(frame):
        return None
    try:
        return _finish_history(
            frame.with_columns(
                pl.col("run_id", "metric").cast(pl.Categorical),
                pl.col("step", "timestamp_ms").cast(pl.Int64),
                pl.col("value").cast(pl.Float64),
                pl.col("is_nan").cast(pl.Int64) != 0,
            )
        )
    except pl.exceptions.PolarsError:
        return None


def _all_good(table: pl.DataFrame) -> bool:
    """True when every row of an unfiltered metrics table passes `GOOD_POINT`."""
    schema = table.schema
    if not (
        schema["run_id"] in (pl.String, pl.Categorical)
        and schema["metric"] in (pl.String, pl.Categorical)
        and schema["step"].is_integer()
        and schema["timestamp_ms"].is_integer()
        and (schema["value"].is_float() or schema["value"].is_integer())
        and schema["is_nan"].is_integer()
    ):
        return False
    bad = (
        pl.any_horizontal(pl.col("run_id", "metric", "step", "timestamp_ms").is_null())
        | ~pl.col("timestamp_ms").is_between(MIN_MS, MAX_MS)
        | (pl.col("value").is_null() & (pl.col("is_nan").fill_null(0) == 0))
    )
    return not table.select(bad.any()).item()


def metric_rows_frame(rows: list[Any]) -> pl.DataFrame:
    """Rows of `_METRICS_QUERY` (run id, key, step, timestamp, value, is_nan) as a frame."""
    run_ids, keys, steps, stamps, values, nans = zip(*rows, strict=True)
    return pl.DataFrame(
        {
            "run_id": pl.Series(run_ids, dtype=pl.String),
            "metric": pl.Series(keys, dtype=pl.String),
            "step": pl.Series(steps, dtype=pl.Int64),
            "timestamp_ms": pl.Series(stamps, dtype=pl.Int64),
            "value": pl.Series(values, dtype=pl.Float64),
            "is_nan": pl.Series([bool(n) for n in nans], dtype=pl.Boolean),
        }
    )


def metric_blocks(
    connection: sqlite3.Connection, path: Path, query: str, *args: Any
) -> list[pl.DataFrame]:
    """The rows of a query of `METRIC_COLUMNS` (filtered by `GOOD_POINT`), in blocks.

    Text is decoded by SQLite's reader at C speed; when some run id or key is not UTF-8,
    the rows are read again as bytes and the undecodable ones skipped (`decoded`)."""
    blocks: list[pl.DataFrame] = []
    connection.text_factory = str
    try:
        cursor = connection.execute(query, args)
        while rows := cursor.fetchmany(500_000):
            blocks.append(metric_rows_frame(rows))
        return blocks
    except sqlite3.OperationalError as error:
        if "decode" not in str(error):
            raise
    finally:
        connection.text_factory = bytes
    rows = decoded(
        connection.execute(query.replace("SELECT ", "SELECT rowid, ", 1), args).fetchall(),
        path,
        "metrics",
    )
    return [metric_rows_frame([r[1:] for r in rows])] if rows else []


def _sqlite_history(connection: sqlite3.Connection, path: Path) -> pl.DataFrame:
    """The whole metrics table in one query, fetched in blocks into columns."""
    blocks = metric_blocks(connection, path, _METRICS_QUERY)
    if not blocks:
        return pl.DataFrame(schema=HISTORY_COLUMNS)
    return _finish_history(pl.concat(blocks))


def _finish_history(frame: pl.DataFrame) -> pl.DataFrame:
    """NaN from `is_nan`, infinities from +-DBL_MAX (how the SQL store writes them)."""
    # Categorical once, here: the joins, group-bys and the final `Runs` all use it.
    names = pl.col("run_id", "metric").cast(pl.Categorical)
    special = pl.col("is_nan").any() | (pl.col("value").abs() >= DBL_MAX).any()
    if frame.height and not frame.select(special).item():  # most stores: one pass to check
        return frame.with_columns(names).drop("is_nan")
    return frame.with_columns(
        pl.when(pl.col("is_nan"))
        .then(float("nan"))
        .when(pl.col("value") >= DBL_MAX)
        .then(float("inf"))
        .when(pl.col("value") <= -DBL_MAX)
        .then(float("-inf"))
        .otherwise(pl.col("value"))
        .alias("value"),
        names,
    ).drop("is_nan")


def run_row(
    row: tuple[Any, ...], experiments: Mapping[str, Any], include_deleted: bool
) -> dict[str, Any] | None:
    """A row of MLflow's `runs` table as a run record, or None when it is not wanted."""
    run_id, name, status, start, end, stage, experiment_id = row
    if not include_deleted and stage == "deleted":
        return None
    if str(experiment_id) not in experiments:
        return None
    return {
        "run_id": run_id,
        "name": name,
        "status": status,
        "start_ms": start,
        "end_ms": end,
        "experiment_id": str(experiment_id),
    }
