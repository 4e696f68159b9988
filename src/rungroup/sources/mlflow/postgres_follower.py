"""Following an MLflow backend store in PostgreSQL: each poll reads only what is new.

MLflow's tables have no row numbers to resume from, so a poll asks by time, in one read-only
transaction (every table as of the same snapshot):

- `runs`: the runs started after the latest start seen, and the runs that were running (their
  status and end time change); `experiments`: every row (a handful);
- `metrics`: the rows whose timestamp is at or after the latest one seen (rows at exactly that
  time that were already counted are not counted twice). Only their count and the runs they
  belong to are kept: the history itself stays in the database (`SqlHistory`);
- `params`, `tags` and `latest_metrics`: only the rows of the runs found above.

A point logged with a client timestamp older than the newest one already seen (a clock behind
the others, or `log_batch` of old points) is only seen by the next `load`; so are runs deleted
or renamed after they finished. docs/sources.md says so.
"""

from __future__ import annotations

import json
from typing import Any

from rungroup.runs import Runs
from rungroup.sources.mlflow.database import Database, Reader
from rungroup.sources.mlflow.postgres import SqlHistory, read_postgres, runs_of
from rungroup.sources.mlflow.records import RUN_COLUMNS, _value, add_run
from rungroup.sources.mlflow.sqlite import run_row

__all__ = ["PostgresFollower"]

_IDS = "(SELECT jsonb_array_elements_text($1::jsonb))"


class PostgresFollower:
    """Polls an MLflow store in PostgreSQL; `poll()` returns the current `Runs` and whether
    it changed. Options are those of `load_postgres`."""

    def __init__(
        self,
        source: str,
        *,
        group_tag: str = "group",
        job_type_tag: str = "job_type",
        nested: bool = True,
        include_deleted: bool = False,
        experiments: list[str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._database = Database.from_uri(source, timeout)
        self._provider = SqlHistory(self._database)
        self._options = (group_tag, job_type_tag, nested, experiments)
        self._include_deleted = include_deleted
        self._current: Runs | None = None
        self._last_ms: int | None = None
        self._at_last: set[tuple[Any, ...]] = set()
        self._last_start: int | None = None
        #: rows each table gave in the last poll (tests check that polls read little)
        self.rows_read: dict[str, int] = {}

    def poll(self) -> tuple[Runs, bool]:
        """Read what changed since the last poll; `changed` is False when nothing did."""
        self.rows_read = {}
        if self._current is None:
            self._raw = read_postgres(self._database, self._include_deleted)
            with self._database.connect() as reader:
                self._read_points(reader)
            self._last_start = max(
                (r["start_ms"] for r in self._raw.runs if r["start_ms"] is not None), default=None
            )
            self._current = runs_of(self._raw, self._provider, *self._options)
            return self._current, True
        with self._database.connect() as reader:
            touched = self._read_runs(reader) | self._read_points(reader)
            if touched:
                self._read_details(reader, touched)
        if not touched:
            return self._current, False
        self._current = runs_of(self._raw, self._provider, *self._options)
        return self._current, True

    def _count(self, table: str, rows: int) -> None:
        self.rows_read[table] = self.rows_read.get(table, 0) + rows

    def _read_points(self, reader: Reader) -> set[str]:
        """The runs with metric rows newer than the last poll's (the first poll: none, only
        where the newest rows are)."""
        if self._last_ms is None:
            top = reader.select("SELECT max(timestamp) AS top FROM metrics").column(0)[0].as_py()
            if top is None:
                return set()
            self._last_ms = int(top)
        table = reader.select(
            "SELECT run_uuid, key, step, timestamp, value, is_nan FROM metrics "
            "WHERE timestamp >= $1",
            (self._last_ms,),
        )
        self._count("metrics", table.num_rows)
        rows = list(zip(*(table.column(i).to_pylist() for i in range(6)), strict=True))
        first = not self._at_last
        new = [row for row in rows if row not in self._at_last]
        if not rows:
            return set()
        top = max(row[3] for row in rows)
        if top != self._last_ms:
            self._at_last = set()
        self._last_ms = top
        self._at_last |= {row for row in rows if row[3] == top}
        return set() if first else {row[0] for row in new}

    def _read_runs(self, reader: Reader) -> set[str]:
        """New runs (by start time) and the rows of the runs that were running."""
        raw = self._raw
        raw.experiments = {}
        for experiment_id, name, stage in _rows(
            reader, "SELECT experiment_id::text, name, lifecycle_stage FROM experiments"
        ):
            if self._include_deleted or stage != "deleted":
                raw.experiments[str(experiment_id)] = name
        running = [r["run_id"] for r in raw.runs if r["status"] in ("RUNNING", "SCHEDULED")]
        table = reader.select(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE start_time > $2 OR start_time IS NULL "
            f"OR run_uuid IN {_IDS} ORDER BY start_time, run_uuid",
            (json.dumps(running), -(2**62) if self._last_start is None else self._last_start),
        )
        self._count("runs", table.num_rows)
        touched: set[str] = set()
        known = {r["run_id"]: r for r in raw.runs}
        for row in zip(*(table.column(i).to_pylist() for i in range(7)), strict=True):
            run = run_row(row, raw.experiments, self._include_deleted)
            if run is None:
                continue
            before = known.get(run["run_id"])
            if before is not None:
                if all(before.get(k) == v for k, v in run.items()):
                    continue
                raw.runs.remove(before)
                del raw.places[run["run_id"]]
            if add_run(raw, run, f"{self._database.name}: table runs, run {row[0]}"):
                touched.add(run["run_id"])
                if run["start_ms"] is not None:
                    self._last_start = max(self._last_start or run["start_ms"], run["start_ms"])
        return touched

    def _read_details(self, reader: Reader, touched: set[str]) -> None:
        """Params, tags and latest metrics of the `touched` runs, read again."""
        ids = json.dumps(sorted(touched))
        kept = {r["run_id"] for r in self._raw.runs}
        for table, target in (("params", self._raw.params), ("tags", self._raw.tags)):
            rows = _rows(
                reader, f"SELECT run_uuid, key, value FROM {table} WHERE run_uuid IN {_IDS}", ids
            )
            self._count(table, len(rows))
            for run_id in touched:
                target.pop(run_id, None)
            for run_id, key, value in rows:
                if run_id in kept:
                    target.setdefault(run_id, {})[key] = value
        rows = _rows(
            reader,
            f"SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN {_IDS}",
            ids,
        )
        self._count("latest_metrics", len(rows))
        for run_id, key, value, is_nan in rows:
            if run_id in kept:
                self._raw.latest.setdefault(run_id, {})[key] = _value(value, is_nan)


def _rows(reader: Reader, query: str, *parameters: Any) -> list[tuple[Any, ...]]:
    table = reader.select(query, tuple(parameters))
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(zip(*columns, strict=True))
