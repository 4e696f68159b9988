"""MLflow runs: the SQLite store, the `mlruns/` file store and a tracking server (REST).

All three are read without the `mlflow` package: SQLite with one query per table (never one
per run or metric), the file store as the text files it is, a server through its REST API with
the standard library. Other database URIs (postgresql://, mysql://, ...) go through mlflow's
own client, which needs ``pip install 'rungroup[mlflow]'``.

Mapping: experiment -> `project`, run name -> `name`, params -> `config.*` (numbers parsed),
latest metrics -> `summary.*`, metric history -> history, tags -> `tags` ("key=value"); the
`group` and `job_type` come from the tags named by `group_tag` / `job_type_tag`, and where a
run has no group tag, nested runs are grouped under their root parent run's name.
"""

from __future__ import annotations

import io
import math
import os
import re
import sqlite3
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from rungroup.runs import Runs, warn_mixed_types
from rungroup.sources.files import (
    MAX_TEXT_BYTES,
    read_bytes,
    read_text,
    subfolders,
    walk,
    yaml_value,
)
from rungroup.sources.runrecords import (
    RunRecord,
    assemble,
    parse_number,
    progress,
    require,
    shown,
    utc_from_seconds,
    warn,
)

__all__ = ["is_mlflow", "load_mlflow"]

#: MLflow's run statuses -> rungroup's states (KILLED: stopped from outside, so "crashed").
STATES = {
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "crashed",
}
#: The file store writes the status as the number of MLflow's RunStatus enum.
FILE_STATES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
PARENT_TAG = "mlflow.parentRunId"
_INTEGER = re.compile(r"[+-]?\d+")
#: The columns of MLflow's `runs` table that `run_row` reads.
RUN_COLUMNS = "run_uuid, name, status, start_time, end_time, lifecycle_stage, experiment_id"
NAME_TAG = "mlflow.runName"
#: The SQL store writes +-inf as +-DBL_MAX; they are turned back into infinities.
DBL_MAX = sys.float_info.max

HISTORY_COLUMNS = {
    "run_id": pl.String,
    "metric": pl.String,
    "step": pl.Int64,
    "timestamp_ms": pl.Int64,
    "value": pl.Float64,
}


@dataclass
class _Raw:
    """What every MLflow backend reads, before the mapping to `Runs`."""

    source: str
    experiments: dict[str, str] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, dict[str, str]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    latest: dict[str, dict[str, float]] = field(default_factory=dict)
    history: list[pl.DataFrame] = field(default_factory=list)
    #: run id -> where it was read (a file, a row), to name both when a run id repeats
    places: dict[str, str] = field(default_factory=dict)


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


def _is_file_store(path: Path) -> bool:
    if not path.is_dir():
        return False
    try:
        children = list(path.iterdir())
    except OSError:
        return False
    for child in children:
        if child.is_dir() and (child / "meta.yaml").is_file():
            try:
                meta = read_bytes(child / "meta.yaml", limit=MAX_TEXT_BYTES).decode(
                    "utf-8", "replace"
                )
            except OSError:
                continue
            if "experiment_id" in meta or "artifact_location" in meta:
                return True
    return False


def is_mlflow(source: Any) -> bool:
    """True for an MLflow SQLite file or URI, an `mlruns/` folder or an http(s) URI."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fspath(source)
    if text.startswith(("sqlite:///", "http://", "https://", "file://")):
        return True
    path = Path(text)
    try:
        if _sqlite_path(path) is not None:
            return _has_mlflow_tables(_sqlite_path(path))  # type: ignore[arg-type]
        return _is_file_store(path) or (
            (path / "mlruns").is_dir() and _is_file_store(path / "mlruns")
        )
    except OSError:
        return False


def _has_mlflow_tables(path: Path) -> bool:
    try:
        with _connect(path) as connection:
            names = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error:
        return False
    return set(REQUIRED_TABLES) <= names


def _connect(path: Path) -> sqlite3.Connection:
    # Read-only, and immutable when no other process holds the file: nothing is written,
    # not even a journal, into the user's folder.
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True)


# --- what MLflow writes ---------------------------------------------------------------------

#: Milliseconds since 1970 that are a time: the years 1 to 9999 (what `datetime` holds).
#: A start time of 2**62 ms is not one: it is refused instead of wrapping around to 1970.
MIN_MS = -62_135_596_800_000
MAX_MS = 253_402_300_799_999


def _integer(value: Any) -> int | None:
    """An int64 as MLflow writes one (an int, or its decimal text), else None: 1.5, '1.5',
    'abc', True and numbers beyond int64 are not steps or times."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def point_problem(step: Any, timestamp: Any, value: Any) -> str | None:
    """Why a metric point is not one MLflow writes (an integer step, a timestamp in ms within
    `MIN_MS`..`MAX_MS`, a numeric value), or None when it is one. Such points are skipped."""
    stamp = _integer(timestamp)
    if stamp is None or not MIN_MS <= stamp <= MAX_MS:
        return f"timestamp {_shown(timestamp)} is not a time in milliseconds since 1970"
    if _number(value) is None:
        return f"value {_shown(value)} is not a number"
    if _integer(step) is None:
        return f"step {_shown(step)} is not an integer"
    return None


def _shown(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def add_run(raw: _Raw, run: dict[str, Any], where: str) -> bool:
    """Append `run` to `raw.runs` after checking it; False (with a warning naming `where`)
    when it is skipped: no run id, or a run id already read elsewhere (a run folder copied
    into a second experiment, a duplicated row). Start and end times that are not times and
    unknown statuses are left empty, with a warning."""
    run_id = run.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        warn(where, "a run without a run id; skipped")
        return False
    if run_id in raw.places:
        warn(where, f"run {run_id} was already read from {raw.places[run_id]}; this copy skipped")
        return False
    for field_name, label in (("start_ms", "start_time"), ("end_ms", "end_time")):
        given = run.get(field_name)
        stamp = None if given is None else _integer(given)
        if given is not None and (stamp is None or not MIN_MS <= stamp <= MAX_MS):
            warn(
                where,
                f"run {run_id}: {label} {_shown(given)} is not a time in milliseconds since "
                "1970; left empty",
            )
            stamp = None
        run[field_name] = stamp
    status = run.get("status")
    if status is not None and str(status).upper() not in STATES:
        warn(
            where,
            f"run {run_id}: unknown status {_shown(status)} (valid: {', '.join(STATES)}); "
            "state left empty",
        )
        run["status"] = None
    raw.places[run_id] = where
    raw.runs.append(run)
    return True


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


def _read_sqlite(path: Path, include_deleted: bool) -> _Raw:
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
        with dbapi.connect(uri) as connection, connection.cursor() as cursor:
            cursor.execute(query)
            arrow = cursor.fetch_arrow_table()
        # ADBC hands SQLite's text over unchecked; invalid UTF-8 would crash Polars later.
        arrow.validate(full=True)
        table = pl.from_arrow(arrow)
    except Exception:  # any driver trouble: the standard library reads it instead
        return None
    if not isinstance(table, pl.DataFrame) or table.width != 6:
        return None
    table.columns = ["run_id", "metric", "step", "timestamp_ms", "value", "is_nan"]
    if checked and not _all_good(table):
        return None
    try:
        return _finish_history(
            table.with_columns(
                pl.col("run_id", "metric").cast(pl.String),
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
        schema["run_id"] == pl.String
        and schema["metric"] == pl.String
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
    return frame.with_columns(
        pl.when(pl.col("is_nan"))
        .then(float("nan"))
        .when(pl.col("value") >= DBL_MAX)
        .then(float("inf"))
        .when(pl.col("value") <= -DBL_MAX)
        .then(float("-inf"))
        .otherwise(pl.col("value"))
        .alias("value"),
        # Categorical once, here: the joins, group-bys and the final `Runs` all use it.
        pl.col("run_id", "metric").cast(pl.Categorical),
    ).drop("is_nan")


def _value(value: Any, is_nan: Any = False) -> float:
    if is_nan:
        return math.nan
    number = float(value)
    if number >= DBL_MAX:
        return math.inf
    if number <= -DBL_MAX:
        return -math.inf
    return number


# --- file store -----------------------------------------------------------------------------


def _meta(path: Path) -> dict[str, Any]:
    """A meta.yaml (bounded: `files.yaml_value`); raises `OSError` or `ValueError`."""
    loaded, repaired = yaml_value(read_text(path))
    if repaired:
        warn(path, "a lone surrogate (\\udXXX) in a name or text replaced by U+FFFD")
    if not isinstance(loaded, dict):
        raise ValueError("meta.yaml is not a mapping")
    return loaded


def _key_files(folder: Path) -> dict[str, Path]:
    """`metrics/`, `params/`, `tags/`: one file per key; a key with '/' is a subfolder."""
    if not folder.is_dir():
        return {}
    return {shown(p.relative_to(folder).as_posix()): p for p in walk(folder, lambda _: True)}


def _read_file_store(root: Path, include_deleted: bool, progress_bar: bool | None) -> _Raw:
    raw = _Raw(source=f"mlflow:file:{root}")
    run_folders: list[tuple[str, Path]] = []
    for exp_dir in subfolders(root):
        meta_path = exp_dir / "meta.yaml"
        if exp_dir.name.startswith(".") or not meta_path.is_file():
            continue
        try:
            meta = _meta(meta_path)
        except (OSError, ValueError) as error:
            warn(meta_path, f"experiment not read ({error})")
            continue
        if not include_deleted and meta.get("lifecycle_stage") == "deleted":
            continue
        experiment_id = str(meta.get("experiment_id", exp_dir.name))
        raw.experiments[experiment_id] = str(meta.get("name", exp_dir.name))
        for run_dir in subfolders(exp_dir):
            if (run_dir / "meta.yaml").is_file():
                run_folders.append((experiment_id, run_dir))
    metric_files: list[tuple[str, str, Path]] = []
    for experiment_id, run_dir in progress(
        run_folders, total=len(run_folders), desc="mlflow", enabled=progress_bar
    ):
        try:
            meta = _meta(run_dir / "meta.yaml")
        except (OSError, ValueError) as error:
            warn(run_dir / "meta.yaml", f"run not read ({error})")
            continue
        if "run_id" not in meta and "run_uuid" not in meta:
            continue  # e.g. a logged model's folder in MLflow 3
        if not include_deleted and meta.get("lifecycle_stage") == "deleted":
            continue
        run_id = str(meta.get("run_id") or meta.get("run_uuid"))
        status = meta.get("status")
        run = {
            "run_id": run_id,
            "name": meta.get("run_name"),
            "status": FILE_STATES.get(status, status) if isinstance(status, int) else status,
            "start_ms": meta.get("start_time"),
            "end_ms": meta.get("end_time"),
            "experiment_id": experiment_id,
        }
        if not add_run(raw, run, str(run_dir / "meta.yaml")):
            continue
        for kind, target in (("params", raw.params), ("tags", raw.tags)):
            for key, path in _key_files(run_dir / kind).items():
                try:
                    target.setdefault(run_id, {})[key] = read_text(path)
                except (OSError, UnicodeDecodeError) as error:
                    warn(path, f"{kind[:-1]} not read ({error})")
        metric_files.extend(
            (run_id, key, path) for key, path in _key_files(run_dir / "metrics").items()
        )
    # Summaries come from the history (the last value of every metric), as MLflow's own
    # latest_metrics would.
    raw.history = _metric_files(metric_files)
    return raw


def _metric_files(files: list[tuple[str, str, Path]]) -> list[pl.DataFrame]:
    """Every `metrics/<key>` file: in one parallel scan when all parse, else one by one."""
    if not files:
        return []
    try:
        stacked = pl.scan_csv(
            [str(path) for _, _, path in files],
            has_header=False,
            separator=" ",
            new_columns=["timestamp_ms", "value", "step"],
            schema_overrides={"timestamp_ms": pl.Int64, "value": pl.Float64, "step": pl.Int64},
            include_file_paths="path",
        ).collect()
        if (
            stacked.width == 4
            and not stacked.select(pl.any_horizontal(pl.all().is_null()).any()).item()
            and stacked["timestamp_ms"].is_between(MIN_MS, MAX_MS).all()
        ):
            names = pl.DataFrame(
                {
                    "path": [str(path) for _, _, path in files],
                    "run_id": [run_id for run_id, _, _ in files],
                    "metric": [key for _, key, _ in files],
                }
            )
            return [
                stacked.join(names, on="path", how="left").select(
                    "run_id", "metric", "step", "timestamp_ms", "value"
                )
            ]
    except (pl.exceptions.PolarsError, OSError, TypeError):  # TypeError: a non-UTF-8 path
        pass
    frames = [_metric_file(path, run_id, key) for run_id, key, path in files]
    return [f for f in frames if f is not None and f.height]


def _metric_file(path: Path, run_id: str, key: str) -> pl.DataFrame | None:
    """One `metrics/<key>` file: lines of 'timestamp value step' (old files: no step, 0).
    A line that is not a point MLflow writes (`point_problem`) is skipped with a warning
    naming the first such line and their number."""
    try:
        table = pl.read_csv(
            io.BytesIO(read_bytes(path)),
            separator=" ",
            has_header=False,
            infer_schema=False,
            truncate_ragged_lines=True,
            raise_if_empty=False,
            encoding="utf8-lossy",
        )
    except (OSError, pl.exceptions.PolarsError) as error:
        warn(path, f"metric not read ({error})")
        return None
    if table.width < 2:
        return None
    names = ["timestamp_ms", "value", "step"][: table.width]
    table = table.select(pl.nth(range(len(names)))).rename(
        dict(zip(table.columns[: len(names)], names, strict=True))
    )
    if "step" not in table.columns:  # MLflow before steps wrote 'timestamp value'
        table = table.with_columns(pl.lit("0").alias("step"))
    parsed = table.select(
        pl.lit(run_id, pl.String).alias("run_id"),
        pl.lit(key, pl.String).alias("metric"),
        pl.col("step").str.strip_chars().cast(pl.Int64, strict=False),
        pl.col("timestamp_ms").str.strip_chars().cast(pl.Int64, strict=False),
        pl.col("value").cast(pl.Float64, strict=False),
    )
    good = (
        pl.col("step").is_not_null()
        & pl.col("timestamp_ms").is_between(MIN_MS, MAX_MS)
        & pl.col("value").is_not_null()
    )
    bad = parsed.with_row_index("line", 1).filter(~good.fill_null(False))
    if bad.height:
        line = int(bad["line"][0])
        first = table.row(line - 1, named=True)
        why = point_problem(first["step"], first["timestamp_ms"], first["value"])
        warn(
            path,
            f"line {line} is not 'timestamp value step' ({why}); {bad.height} such line(s) skipped",
        )
        parsed = parsed.filter(good.fill_null(False))
    return parsed


# --- any other tracking URI through mlflow's client -------------------------------------------


def _read_client(uri: str, include_deleted: bool, progress_bar: bool | None) -> _Raw:
    mlflow = require("mlflow", "mlflow")
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    view = mlflow.entities.ViewType.ALL if include_deleted else mlflow.entities.ViewType.ACTIVE_ONLY
    raw = _Raw(source=f"mlflow:{uri}")
    for experiment in client.search_experiments(view_type=view):
        raw.experiments[str(experiment.experiment_id)] = experiment.name
    runs = client.search_runs(list(raw.experiments), run_view_type=view) if raw.experiments else []
    for run in progress(runs, total=len(runs), desc="mlflow", enabled=progress_bar):
        info, data = run.info, run.data
        where = f"{uri}: run {info.run_id}"
        record = {
            "run_id": info.run_id,
            "name": info.run_name,
            "status": info.status,
            "start_ms": info.start_time,
            "end_ms": info.end_time,
            "experiment_id": str(info.experiment_id),
        }
        if not add_run(raw, record, where):
            continue
        raw.params[info.run_id] = dict(data.params)
        raw.tags[info.run_id] = dict(data.tags)
        raw.latest[info.run_id] = {k: _value(v) for k, v in data.metrics.items()}
        for key in data.metrics:
            points = [
                (p.step, p.timestamp, p.value) for p in client.get_metric_history(info.run_id, key)
            ]
            raw.history.append(points_frame(info.run_id, key, points, f"{where}, metric {key}"))
    return raw


def points_frame(
    run_id: str, key: str, points: list[tuple[Any, Any, Any]], where: str
) -> pl.DataFrame:
    """(step, timestamp, value) points of one metric as `HISTORY_COLUMNS` rows; points that
    `point_problem` refuses are skipped with one warning naming `where` and the first."""
    kept: list[tuple[int, int, float]] = []
    problems: list[tuple[int, str]] = []
    for index, (step, stamp, value) in enumerate(points):
        why = point_problem(step, stamp, value)
        if why is None:
            kept.append((int(step), int(stamp), _value(value)))
        else:
            problems.append((index, why))
    if problems:
        index, why = problems[0]
        warn(where, f"point {index}: {why}; {len(problems)} such point(s) skipped")
    return pl.DataFrame(
        {
            "run_id": [run_id] * len(kept),
            "metric": [key] * len(kept),
            "step": [p[0] for p in kept],
            "timestamp_ms": [p[1] for p in kept],
            "value": [p[2] for p in kept],
        },
        schema=HISTORY_COLUMNS,
    )


# --- mapping --------------------------------------------------------------------------------


def _root_names(raw: _Raw) -> dict[str, str]:
    """Run id -> the name (or id) of its root parent run, for runs nested under another."""
    parents = {
        r: t[PARENT_TAG] for r, t in raw.tags.items() if t.get(PARENT_TAG) and t[PARENT_TAG] != r
    }
    names = {
        r["run_id"]: r["name"] or raw.tags.get(r["run_id"], {}).get(NAME_TAG) for r in raw.runs
    }
    roots: dict[str, str] = {}
    for run_id in parents:
        seen = {run_id}
        top = parents[run_id]
        while top in parents and parents[top] not in seen:
            seen.add(top)
            top = parents[top]
        roots[run_id] = names.get(top) or top
    return roots


def _warn_mixed_params(raw: _Raw) -> None:
    """A param that is a number in some runs and text in others becomes a text column: warn
    as every other source does (`warn_mixed_types`), naming the column."""
    keys = sorted({k for run in raw.runs for k in raw.params.get(run["run_id"], {})})
    for key in keys:
        given = [raw.params.get(run["run_id"], {}).get(key) for run in raw.runs]
        values = [parse_number(v) if v.strip() else v for v in given if isinstance(v, str)]
        if len({isinstance(v, str) for v in values}) > 1:
            warn_mixed_types(f"config.{key}", values)


def run_records(
    raw: _Raw, group_tag: str, job_type_tag: str, nested: bool
) -> tuple[list[RunRecord], dict[str, int | None]]:
    """One `RunRecord` per run of `raw`, and each run's start time (ms since 1970)."""
    _warn_mixed_params(raw)
    roots = _root_names(raw) if nested else {}
    records: list[RunRecord] = []
    starts: dict[str, int | None] = {}
    for run in raw.runs:
        run_id = run["run_id"]
        tags = raw.tags.get(run_id, {})
        start: int | None = run["start_ms"]  # checked by `add_run`
        end: int | None = run["end_ms"]
        starts[run_id] = start
        status = str(run["status"]).upper() if run["status"] is not None else None
        user_tags = [
            f"{k}={v}" if v else k
            for k, v in sorted(tags.items())
            if not k.startswith("mlflow.") and k not in (group_tag, job_type_tag)
        ]
        records.append(
            RunRecord(
                id=run_id,
                source=raw.source,
                name=run["name"] or tags.get(NAME_TAG) or run_id,
                project=raw.experiments.get(run["experiment_id"]),
                group=tags.get(group_tag) or roots.get(run_id),
                job_type=tags.get(job_type_tag),
                state=STATES.get(status or ""),
                tags=user_tags,
                created_at=utc_from_seconds(start / 1000) if start is not None else None,
                runtime=(end - start) / 1000 if start is not None and end is not None else None,
                config=dict(raw.params.get(run_id, {})),
                summary=dict(raw.latest.get(run_id, {})),
            )
        )
    return records, starts


def timed_history(history: pl.LazyFrame, starts: dict[str, int | None]) -> pl.LazyFrame:
    """Raw metric rows (`HISTORY_COLUMNS`) -> history chunk columns: `time` from each run's
    start, `timestamp` from the milliseconds; rows of runs not in `starts` are left out."""
    start_frame = pl.DataFrame(
        {"run_id": list(starts), "start_ms": list(starts.values())},
        schema={"run_id": pl.Categorical, "start_ms": pl.Int64},
    )
    return history.join(start_frame.lazy(), on="run_id", how="inner", maintain_order="left").select(
        "run_id",
        "metric",
        "step",
        ((pl.col("timestamp_ms") - pl.col("start_ms")) / 1000).alias("time"),
        (pl.col("timestamp_ms") * 1000).cast(pl.Datetime("us", "UTC")).alias("timestamp"),
        "value",
    )


def _to_runs(raw: _Raw, group_tag: str, job_type_tag: str, nested: bool) -> Runs:
    records, starts = run_records(raw, group_tag, job_type_tag, nested)
    history = (
        pl.concat(raw.history, how="vertical_relaxed")
        if raw.history
        else pl.DataFrame(schema=HISTORY_COLUMNS)
    ).with_columns(pl.col("run_id", "metric").cast(pl.Categorical))
    return assemble(records, [timed_history(history.lazy(), starts).collect()], parse_strings=True)


def load_mlflow(
    source: str | Path = "mlflow.db",
    *,
    group_tag: str = "group",
    job_type_tag: str = "job_type",
    nested: bool = True,
    include_deleted: bool = False,
    experiments: list[str] | None = None,
    timeout: float = 30.0,
    deadline: float = 3600.0,
    workers: int = 8,
    progress_bar: bool | None = None,
) -> Runs:
    """Load MLflow runs from a SQLite store, an `mlruns/` folder or a tracking URI.

    `source`: ``mlflow.db`` / ``sqlite:///path/mlflow.db`` (MLflow 3's default store, read
    directly), a folder holding ``mlflow.db`` or ``mlruns/``, an ``mlruns/`` folder (the file
    store), ``http(s)://host:port`` (a tracking server, over REST: one request per run and
    metric, `workers` at a time; each request must be answered within `timeout` seconds and
    the whole load within `deadline`), or any other MLflow tracking URI (through mlflow's
    client, ``pip install 'rungroup[mlflow]'``). `experiments` keeps only experiments with
    these names. Deleted runs and experiments are left out unless `include_deleted`.
    """
    text = os.fspath(source)
    reader: Callable[[], _Raw]
    if text.startswith(("http://", "https://")):
        from rungroup.sources.mlflow_rest import read_rest

        reader = lambda: read_rest(text, include_deleted, progress_bar, timeout, workers, deadline)  # noqa: E731
    elif (path := _sqlite_path(text)) is not None:
        if not path.is_file():
            raise FileNotFoundError(f"no such MLflow database: {path}")
        reader = lambda: _read_sqlite(path, include_deleted)  # noqa: E731
    else:
        folder = Path(text[len("file://") :] if text.startswith("file://") else text)
        if folder.is_dir() and not _is_file_store(folder) and _is_file_store(folder / "mlruns"):
            folder = folder / "mlruns"
        if folder.is_dir():
            reader = lambda: _read_file_store(folder, include_deleted, progress_bar)  # noqa: E731
        elif "://" in text:
            reader = lambda: _read_client(text, include_deleted, progress_bar)  # noqa: E731
        else:
            raise FileNotFoundError(f"no MLflow store at {text}")
    raw = reader()
    if experiments is not None:
        wanted = set(experiments)
        raw.experiments = {k: v for k, v in raw.experiments.items() if v in wanted}
        raw.runs = [r for r in raw.runs if r["experiment_id"] in raw.experiments]
    return _to_runs(raw, group_tag, job_type_tag, nested)


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
