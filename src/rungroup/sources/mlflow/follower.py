"""Following an MLflow SQLite store while runs are logged: each poll reads only new rows.

An `MlflowFollower` keeps one read-only connection to the database. A poll first asks SQLite
whether any other connection committed since the last poll (``PRAGMA data_version``); when
none did, nothing else is read. Otherwise it reads, in one read transaction (so that every
table is seen as of the same commit):

- `metrics`: only the rows whose rowid is beyond the last one read (MLflow's metrics table is
  insert-only and SQLite gives a new row the largest rowid + 1);
- `params`: only new rows (MLflow refuses to change a logged param);
- `tags`: new rows, plus every tag of the runs that are running or whose run row changed
  (a tag is overwritten in place, keeping its rowid);
- `latest_metrics`: only the rows of runs that logged new metrics;
- `runs` and `experiments`: every row (one per run and experiment), to see status, end time,
  name and deletion changes.

The points are appended to a frame of raw rows; `time` and `timestamp` are derived from each
run's start when the history is queried, as `load_mlflow` derives them.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

import polars as pl

from rungroup.runs import HISTORY_SCHEMA, Runs
from rungroup.sources.follow_common import LAST_SCHEMA, last_chunk, update_last
from rungroup.sources.mlflow.records import (
    HISTORY_COLUMNS,
    RUN_COLUMNS,
    _number,
    _Raw,
    _value,
    add_run,
    run_records,
    timed_history,
)
from rungroup.sources.mlflow.sqlite import (
    GOOD_POINT,
    METRIC_COLUMNS,
    _finish_history,
    _sqlite_path,
    bad_metric_rows,
    decoded,
    metric_blocks,
    run_row,
)
from rungroup.sources.runrecords import assemble

__all__ = ["MlflowFollower"]

#: Merge the points' chunks once there are more than this many (appends add one a poll).
MAX_CHUNKS = 32
#: Run ids per `IN (...)` list (SQLite allows 32766 variables; stay well below).
IN_BATCH = 500

_POINTS_SCHEMA = {**HISTORY_COLUMNS, "run_id": pl.Categorical, "metric": pl.Categorical}


class MlflowFollower:
    """Polls an MLflow SQLite store; `poll()` returns the current `Runs` and whether it changed.

    Options are those of `load_mlflow` for a SQLite store; every poll returns what
    ``load_mlflow(source, **options)`` would return for the database as it is then.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        group_tag: str = "group",
        job_type_tag: str = "job_type",
        nested: bool = True,
        include_deleted: bool = False,
        experiments: list[str] | None = None,
    ) -> None:
        path = _sqlite_path(os.fspath(source))
        if path is None:
            raise ValueError(f"{source} is not an MLflow SQLite store")
        if not path.is_file():
            raise FileNotFoundError(f"no such MLflow database: {path}")
        self.path = path
        self.group_tag = group_tag
        self.job_type_tag = job_type_tag
        self.nested = nested
        self.include_deleted = include_deleted
        self.experiments = None if experiments is None else set(experiments)
        self._connection: sqlite3.Connection | None = None
        self._inode: int | None = None
        self._version: int | None = None
        self._current: Runs | None = None
        #: rows read by the last poll, per table (what "only what changed" costs)
        self.rows_read: dict[str, int] = {}
        self._reset()

    def _reset(self) -> None:
        self._metric_rowid = 0
        self._param_rowid = 0
        self._tag_rowid = 0
        self._experiment_rows: list[tuple[Any, ...]] = []
        self._run_rows: dict[str, tuple[Any, ...]] = {}
        self._params: dict[str, dict[str, str]] = {}
        self._tags: dict[str, dict[str, str]] = {}
        self._latest: dict[str, dict[str, float]] = {}
        self._points = pl.DataFrame(schema=_POINTS_SCHEMA)
        self._last = pl.DataFrame(schema=LAST_SCHEMA)
        self._current = None

    def close(self) -> None:
        """Close the database connection (a later poll opens it again)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> MlflowFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> sqlite3.Connection:
        inode = self.path.stat().st_ino
        if self._connection is not None and inode != self._inode:
            self.close()  # the file was replaced: start over
            self._reset()
        if self._connection is None:
            uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
            self._connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
            # Text as bytes, decoded by `decoded`: a row that is not UTF-8 is skipped with a
            # warning instead of failing the whole poll.
            self._connection.text_factory = bytes
            self._inode = inode
            self._version = None
        return self._connection

    def poll(self) -> tuple[Runs, bool]:
        """Read what changed since the last poll; `changed` is False when nothing did."""
        self.rows_read = {}
        connection = self._connect()
        try:
            version = connection.execute("PRAGMA data_version").fetchone()[0]
            if self._current is not None and version == self._version:
                return self._current, False
            # One read transaction: every table as of the same commit.
            connection.execute("BEGIN")
            try:
                changed = self._read(connection)
            finally:
                connection.rollback()
        except sqlite3.Error as error:
            raise ValueError(f"{self.path}: not a readable MLflow database ({error})") from error
        self._version = version
        if changed or self._current is None:
            self._current = self._runs()
            return self._current, True
        return self._current, False

    # --- reading ---------------------------------------------------------------------------

    def _rows(self, connection: sqlite3.Connection, table: str, query: str, *args: Any) -> Any:
        """The rows of `query` (its first column the rowid), text decoded (`decoded`)."""
        rows = connection.execute(query, args).fetchall()
        self.rows_read[table] = self.rows_read.get(table, 0) + len(rows)
        return decoded(rows, self.path, table)

    def _read(self, connection: sqlite3.Connection) -> bool:
        """Read the new rows of every table; True when anything that shows changed."""
        top = connection.execute("SELECT max(rowid) FROM metrics").fetchone()[0] or 0
        if top < self._metric_rowid:  # rows were deleted and their rowids reused: start over
            self._reset()
        changed = False
        experiments = [
            row[1:]
            for row in self._rows(
                connection,
                "experiments",
                "SELECT rowid, experiment_id, name, lifecycle_stage FROM experiments",
            )
        ]
        if experiments != self._experiment_rows:
            self._experiment_rows = experiments
            changed = True
        run_rows = self._rows(connection, "runs", f"SELECT rowid, {RUN_COLUMNS} FROM runs")
        touched = set()
        fresh: dict[str, tuple[Any, ...]] = {}
        for row in run_rows:
            if row[1] in fresh:  # a repeated run id: `add_run` warns about it
                fresh[f"{row[1]}\x00{row[0]}"] = row
                continue
            fresh[row[1]] = row
            if self._run_rows.get(row[1]) != row:
                touched.add(row[1])
        if touched or list(fresh) != list(self._run_rows):
            changed = True
        self._run_rows = fresh
        for rowid, run_id, key, value in self._rows(
            connection,
            "params",
            "SELECT rowid, run_uuid, key, value FROM params WHERE rowid > ? ORDER BY rowid",
            self._param_rowid,
        ):
            self._params.setdefault(run_id, {})[key] = value
            self._param_rowid = max(self._param_rowid, rowid)
            changed = True
        changed = self._read_tags(connection, touched) or changed
        new_points = self._read_metrics(connection, top)
        if new_points is not None:
            changed = True
            self._add_points(new_points)
            self._read_latest(connection, set(new_points["run_id"].cast(pl.String).unique()))
        return changed

    def _read_tags(self, connection: sqlite3.Connection, touched: set[str]) -> bool:
        reread = touched | {
            r[1] for r in self._run_rows.values() if r[3] in ("RUNNING", "SCHEDULED")
        }
        changed = False
        rows: list[tuple[Any, ...]] = []
        ids = sorted(reread)
        for at in range(0, len(ids), IN_BATCH):
            batch = ids[at : at + IN_BATCH]
            marks = ",".join("?" * len(batch))
            rows += self._rows(
                connection,
                "tags",
                f"SELECT rowid, run_uuid, key, value FROM tags WHERE run_uuid IN ({marks})",
                *batch,
            )
        replaced: dict[str, dict[str, str]] = {run_id: {} for run_id in reread}
        for _, run_id, key, value in rows:
            if run_id in replaced:
                replaced[run_id][key] = value
        for run_id, tags in replaced.items():
            if self._tags.get(run_id, {}) != tags:
                changed = True
                self._tags[run_id] = tags
        for rowid, run_id, key, value in self._rows(
            connection,
            "tags",
            "SELECT rowid, run_uuid, key, value FROM tags WHERE rowid > ? ORDER BY rowid",
            self._tag_rowid,
        ):
            self._tag_rowid = max(self._tag_rowid, rowid)
            if self._tags.get(run_id, {}).get(key) != value:
                self._tags.setdefault(run_id, {})[key] = value
                changed = True
        return changed

    def _read_metrics(self, connection: sqlite3.Connection, top: int) -> pl.DataFrame | None:
        if top <= self._metric_rowid:
            return None
        span = "rowid > ? AND rowid <= ?"
        bad_metric_rows(connection, self.path, span, self._metric_rowid, top)
        blocks = metric_blocks(
            connection,
            self.path,
            f"SELECT {METRIC_COLUMNS} FROM metrics WHERE {span} AND {GOOD_POINT} ORDER BY rowid",
            self._metric_rowid,
            top,
        )
        self.rows_read["metrics"] = sum(b.height for b in blocks)
        self._metric_rowid = top
        if not blocks:
            return None
        return _finish_history(pl.concat(blocks))

    def _add_points(self, points: pl.DataFrame) -> None:
        self._points = pl.concat([self._points, points.select(list(_POINTS_SCHEMA))], rechunk=False)
        if self._points.n_chunks() > MAX_CHUNKS:
            self._points = self._points.rechunk()
        self._last = update_last(self._last, points)

    def _read_latest(self, connection: sqlite3.Connection, run_ids: set[str]) -> None:
        ids = sorted(run_ids)
        for at in range(0, len(ids), IN_BATCH):
            batch = ids[at : at + IN_BATCH]
            marks = ",".join("?" * len(batch))
            for run_id in batch:
                self._latest[run_id] = {}
            for _, run_id, key, value, is_nan in self._rows(
                connection,
                "latest_metrics",
                "SELECT rowid, run_uuid, key, value, is_nan FROM latest_metrics "
                f"WHERE run_uuid IN ({marks})",
                *batch,
            ):
                if run_id in self._latest and _number(value) is not None:
                    self._latest[run_id][key] = _value(value, is_nan)

    # --- the Runs ---------------------------------------------------------------------------

    def _raw(self) -> _Raw:
        """What `_read_sqlite` (and the `experiments` option) would have read."""
        raw = _Raw(source=f"mlflow:sqlite:{self.path}")
        for experiment_id, name, stage in self._experiment_rows:
            if self.include_deleted or stage != "deleted":
                raw.experiments[str(experiment_id)] = name
        if self.experiments is not None:
            raw.experiments = {k: v for k, v in raw.experiments.items() if v in self.experiments}
        for rowid, *row in self._run_rows.values():
            run = run_row(tuple(row), raw.experiments, self.include_deleted)
            if run is None or not add_run(raw, run, f"{self.path}: table runs, row {rowid}"):
                continue
            run_id = run["run_id"]
            if run_id in self._params:
                raw.params[run_id] = self._params[run_id]
            if run_id in self._tags:
                raw.tags[run_id] = self._tags[run_id]
            if run_id in self._latest:
                raw.latest[run_id] = self._latest[run_id]
        return raw

    def _runs(self) -> Runs:
        raw = self._raw()
        records, starts = run_records(raw, self.group_tag, self.job_type_tag, self.nested)
        chunk = last_chunk(self._last, starts)
        runs_frame = assemble(records, [chunk], parse_strings=True).runs
        history = timed_history(self._points.lazy(), starts).select(
            [pl.col(name).cast(dtype) for name, dtype in HISTORY_SCHEMA.items()]
        )
        return Runs(runs_frame, history, validate=False)


def follows(source: Any) -> Path | None:
    """The database of `source` when it is an MLflow SQLite store, else None."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = _sqlite_path(os.fspath(source))
    return path if path is not None and path.is_file() else None
