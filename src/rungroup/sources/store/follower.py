"""Following a store while runs are written: each poll reads only what changed.

A `StoreFollower` remembers, for every run folder, how far its history file has been read
and when its `run.json` last changed. A poll stats every folder, reads the bytes appended
since the last poll (up to the last complete record: a record being written is left for the
next poll), re-reads the metadata that changed, re-derives the states (a run whose process
died becomes `crashed`), and appends the new points to the history frame instead of
rebuilding it.
"""

from __future__ import annotations

import json
import os
import stat
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rungroup import store
from rungroup.runs import (
    HISTORY_SCHEMA,
    SUMMARY_PREFIX,
    LoadWarning,
    Runs,
    build_runs_frame,
    flatten,
    unify_column,
)
from rungroup.sources.runrecords import shown
from rungroup.sources.store.reader import (
    STALE_AFTER,
    RunMeta,
    _run_folders,
    parse_run_meta,
    run_row,
    run_start,
    with_timestamp,
)

#: Merge the history's chunks once there are more than this many (appends add one a poll).
MAX_CHUNKS = 32
#: The row fields that change while a run is written; the others come from run.json alone.
_DYNAMIC = ("state", "runtime", "summary")


def _warn(message: str) -> None:
    warnings.warn(message, LoadWarning, stacklevel=4)


@dataclass
class _Followed:
    """What is known of one run folder between polls."""

    folder: Path
    meta_path: Path
    history_path: Path
    parsed: RunMeta | None = None
    #: the row's fields that come from run.json alone, as text: a heartbeat changes run.json
    #: but not this, and then the runs table's fixed columns are not built again
    fixed: str = ""
    meta_stamp: tuple[int, int] | None = None
    offset: int = 0
    names: list[str] = field(default_factory=list)
    last_values: dict[str, float] = field(default_factory=dict)
    first_wall: float | None = None
    last_wall: float | None = None
    incomplete_tail: int = 0
    points: int = 0
    #: another folder holds the same run id (warned about once)
    duplicate: bool = False
    #: the id in the runs table: `<project>/<id>` when another project's run has the id
    shown_id: str | None = None

    @property
    def run_id(self) -> str:
        assert self.parsed is not None
        return self.shown_id or str(self.parsed.meta["id"])


@dataclass
class _NewPoints:
    """One run's records read by one poll; `lookup` maps their metric indices to positions
    in the run's `names`."""

    followed: _Followed
    records: list[store.RecordPoints]
    lookup: np.ndarray


@dataclass
class _Chunk:
    """The points of one poll for all the runs it read, as flat columns; `counts[i]` points
    of `parts[i]` in a row, `codes` index `names`."""

    parts: list[_NewPoints]
    names: list[str]
    counts: np.ndarray
    steps: np.ndarray
    walls: np.ndarray
    codes: np.ndarray
    values: np.ndarray


def _gather_chunk(parts: list[_NewPoints]) -> _Chunk:
    """Every record of every run in one set of columns: numpy concatenates once per poll
    rather than once per run (a hundred runs logging made per-run frames most of a poll)."""
    names: dict[str, int] = {}
    steps, walls, codes, values, counts = [], [], [], [], []
    for part in parts:
        run_codes = [names.setdefault(n, len(names)) for n in part.followed.names]
        mapping = np.asarray(run_codes, np.uint32)[part.lookup]
        count = 0
        for record in part.records:
            steps.append(record.steps)
            walls.append(record.walls)
            codes.append(mapping[record.metric_indices])
            values.append(record.values)
            count += record.values.shape[0]
        counts.append(count)
    return _Chunk(
        parts,
        list(names),
        np.asarray(counts, np.int64),
        np.concatenate(steps),
        np.concatenate(walls),
        np.concatenate(codes),
        np.concatenate(values),
    )


def _last_positions(chunk: _Chunk) -> tuple[np.ndarray, np.ndarray]:
    """Part index and position in the chunk of the last point of each (run, metric)."""
    part_index = np.repeat(np.arange(len(chunk.parts), dtype=np.int64), chunk.counts)
    keys = part_index * max(1, len(chunk.names)) + chunk.codes
    _, first_from_end = np.unique(keys[::-1], return_index=True)
    positions = keys.shape[0] - 1 - first_from_end
    return part_index[positions], positions


def _update_runs(chunk: _Chunk) -> np.ndarray:
    """Each run's first and last wall time, point count and last values, updated with the
    chunk; returns the start time of each part's run, repeated for its points."""
    offsets = np.cumsum(chunk.counts) - chunk.counts
    last_walls = np.maximum.reduceat(chunk.walls, offsets).tolist()
    first_walls = chunk.walls[offsets].tolist()
    starts = []
    for part, first, last, count in zip(
        chunk.parts, first_walls, last_walls, chunk.counts.tolist(), strict=True
    ):
        followed = part.followed
        if followed.first_wall is None:
            followed.first_wall = first
        followed.last_wall = last if followed.last_wall is None else max(followed.last_wall, last)
        followed.points += count
        assert followed.parsed is not None
        starts.append(run_start(followed.parsed, followed.first_wall))
    part_index, positions = _last_positions(chunk)
    names = chunk.names
    for index, code, value in zip(
        part_index.tolist(),
        chunk.codes[positions].tolist(),
        chunk.values[positions].tolist(),
        strict=True,
    ):
        chunk.parts[index].followed.last_values[names[code]] = value
    return np.repeat(np.asarray(starts, np.float64), chunk.counts)


def _chunk_frame(chunk: _Chunk, times: np.ndarray) -> pl.DataFrame:
    """The chunk as history rows; the categorical columns are gathered from one small
    dictionary each."""
    run_ids = [part.followed.run_id for part in chunk.parts]
    part_index = np.repeat(np.arange(len(run_ids), dtype=np.uint32), chunk.counts)
    return pl.DataFrame(
        [
            pl.Series("run_id", run_ids, dtype=pl.Categorical).gather(part_index),
            pl.Series("metric", chunk.names, dtype=pl.Categorical).gather(chunk.codes),
            pl.Series("step", chunk.steps),
            pl.Series("time", times),
            pl.Series("value", chunk.values),
        ]
    )


def _fixed_text(parsed: RunMeta) -> str:
    fixed = {k: v for k, v in parsed.record.items() if k not in _DYNAMIC}
    return json.dumps(fixed, sort_keys=True, default=str)


def _summary_columns(summaries: list[dict[str, Any]]) -> list[pl.Series]:
    """`summary.<key>` columns as `build_runs_frame` makes them."""
    flat = [flatten(s) for s in summaries]
    names = sorted({k for entry in flat for k in entry})
    return [unify_column(f"{SUMMARY_PREFIX}{k}", [entry.get(k) for entry in flat]) for k in names]


class StoreFollower:
    """Polls a rungroup store; `poll()` returns the current `Runs` and whether it changed.

    A consumer that keeps something derived from the history (the widget's final values)
    updates it from `appended` instead of the whole history: after a poll that reported a
    change, the history holds `appended_to`'s rows and then `appended`'s (no `timestamp`
    column); `appended` is None when rows were also removed (a history file that shrank is
    read again).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        project: str | None = None,
        stale_after: float = STALE_AFTER,
    ) -> None:
        self.root = Path(path)
        if not self.root.exists():
            raise FileNotFoundError(f"no such folder: {self.root}")
        self.project = project
        self.stale_after = stale_after
        self._runs: dict[Path, _Followed] = {}
        #: the folder of each run id (the first seen: a fresh load keeps the first in order)
        self._owners: dict[str, Path] = {}
        self._history = pl.DataFrame(
            schema={k: v for k, v in HISTORY_SCHEMA.items() if k != "timestamp"}
        )
        #: the runs table's columns that come from run.json alone, and what they were built
        #: from (the folders and their fixed fields)
        self._fixed: tuple[tuple[tuple[Path, str], ...], pl.DataFrame, list[_Followed]] | None = (
            None
        )
        self._runs_frame: pl.DataFrame | None = None
        self._current: Runs | None = None
        #: bytes of history read by the last poll (what "only what changed" costs)
        self.bytes_read = 0
        #: what the history gained since `appended_to`, the `Runs` the previous change returned
        self.appended: pl.DataFrame | None = None
        self.appended_to: Runs | None = None
        #: rows appended since `_current` was built (None: rows were removed too); kept across
        #: a poll that failed half-way, so that `appended` never misses a chunk
        self._pending: pl.DataFrame | None = self._history
        #: the metrics with at least one point (None: to be read from the history again)
        self._metrics: set[str] | None = set()
        #: where the last poll's time went, in ms: listing the folders, reading what changed,
        #: appending the new points, the runs table (for benchmarks)
        self.timings: dict[str, float] = {}

    def poll(self) -> tuple[Runs, bool]:
        """Read what changed since the last poll; `changed` is False when nothing did."""
        self.bytes_read = 0
        started = time.perf_counter()
        folders = _run_folders(self.root, self.project, self._runs) if self.root.is_dir() else []
        listed = time.perf_counter()
        changed = False
        new_points: list[_NewPoints] = []
        for folder in folders:
            followed = self._runs.get(folder)
            if followed is None:
                followed = self._runs[folder] = _Followed(
                    folder,
                    folder / store.META_FILE,
                    folder / store.HISTORY_FILE,
                )
            meta_changed = self._refresh_meta(followed)
            points = self._read_history(followed) if self._owns(followed) else None
            if points is not None:
                new_points.append(points)
            changed = changed or meta_changed or points is not None
        read = time.perf_counter()
        if new_points:
            self._append(_gather_chunk(new_points))
        appended = time.perf_counter()
        runs_frame, run_ids, starts = self._runs_table()
        states_changed = self._runs_frame is None or not runs_frame.equals(self._runs_frame)
        self.timings = {
            "list_ms": 1000 * (listed - started),
            "read_ms": 1000 * (read - listed),
            "append_ms": 1000 * (appended - read),
            "table_ms": 1000 * (time.perf_counter() - appended),
        }
        if changed or states_changed or self._current is None:
            self._runs_frame = runs_frame
            history = with_timestamp(self._history.lazy(), run_ids, starts)
            self.appended, self.appended_to = self._pending, self._current
            self._pending = self._history.clear()
            self._current = Runs(runs_frame, history, validate=False)
            # Known from the chunks: `Runs.metrics` would scan the whole history for them.
            self._current._metrics = tuple(sorted(self._metric_names()))
            return self._current, True
        return self._current, False

    def _append(self, chunk: _Chunk) -> None:
        times = chunk.walls - _update_runs(chunk)
        frame = _chunk_frame(chunk, times)
        if self._pending is not None:
            self._pending = pl.concat([self._pending, frame])
        if self._metrics is not None:
            logged = np.flatnonzero(np.bincount(chunk.codes, minlength=len(chunk.names)))
            self._metrics.update(chunk.names[i] for i in logged.tolist())
        self._history = pl.concat([self._history, frame], rechunk=False)
        if self._history.n_chunks() > MAX_CHUNKS:
            self._history = self._history.rechunk()

    def _owns(self, followed: _Followed) -> bool:
        """Whether the folder is the run of its id (the first folder seen with it, as a fresh
        load keeps the first); another one is skipped, history included, with a warning."""
        if followed.parsed is None:
            return False
        if followed.shown_id is None:
            shown = str(followed.parsed.meta["id"])
            owner = self._owners.setdefault(shown, followed.folder)
            if owner != followed.folder and owner.parent != followed.folder.parent:
                # ids are unique within a project only: shown with the project, as load() does
                shown = f"{followed.folder.parent.name}/{shown}"
                owner = self._owners.setdefault(shown, followed.folder)
            if owner == followed.folder:
                followed.shown_id = shown
            elif not followed.duplicate:
                followed.duplicate = True
                _warn(
                    f"{followed.meta_path}: run id {shown!r} is also used by "
                    f"{owner / store.META_FILE}; run skipped"
                )
        return followed.shown_id is not None

    def _metric_names(self) -> set[str]:
        if self._metrics is None:
            names = self._history["metric"].cast(pl.String).unique().drop_nulls()
            self._metrics = set(names.to_list())
        return self._metrics

    def _refresh_meta(self, followed: _Followed) -> bool:
        try:
            status = followed.meta_path.stat()
        except OSError:
            return False
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp == followed.meta_stamp:
            return False
        followed.meta_stamp = stamp
        if not stat.S_ISREG(status.st_mode):  # a FIFO would block the read
            _warn(f"{shown(followed.meta_path)}: not a regular file; run skipped")
            followed.parsed = None
            return True
        try:
            meta = store.read_meta(followed.meta_path)
        except ValueError as error:
            _warn(f"{error}; run skipped")
            followed.parsed = None
            return True
        followed.parsed = parse_run_meta(meta, followed.folder)
        followed.fixed = _fixed_text(followed.parsed)
        return True

    def _read_history(self, followed: _Followed) -> _NewPoints | None:
        """The records appended since the last read (None if none)."""
        if followed.parsed is None:
            return None
        path = followed.history_path
        try:
            size = path.stat().st_size
        except OSError:
            return None
        if size < followed.offset:
            _warn(f"{path}: shrank from {followed.offset} to {size} bytes; read again")
            self._forget_points(followed)
        if size == followed.offset:
            return None
        try:
            data = _read_from(path, followed.offset, size - followed.offset)
        except OSError:
            return None
        self.bytes_read += len(data)
        decoded = store.decode_history(data, str(path), offset=followed.offset)
        for problem in decoded.problems:
            _warn(problem)
        followed.offset += len(data) - decoded.incomplete_tail
        followed.incomplete_tail = decoded.incomplete_tail
        if not decoded.records:
            return None
        known = {name: position for position, name in enumerate(followed.names)}
        for name in decoded.names:
            if name not in known:
                known[name] = len(followed.names)
                followed.names.append(name)
        lookup = np.asarray([known[n] for n in decoded.names], np.uint32)
        return _NewPoints(followed, decoded.records, lookup)

    def _forget_points(self, followed: _Followed) -> None:
        if followed.parsed is not None and followed.points:
            self._history = self._history.filter(pl.col("run_id") != followed.run_id)
            self._pending = None
            self._metrics = None
        followed.offset = 0
        followed.names = []
        followed.last_values = {}
        followed.first_wall = followed.last_wall = None
        followed.points = 0

    def _followed_runs(self) -> list[_Followed]:
        """The runs that have a usable run.json, the first folder of a repeated id only."""
        runs = []
        for followed in self._runs.values():
            if followed.parsed is None or self._owners.get(followed.run_id) != followed.folder:
                continue
            runs.append(followed)
        return runs

    def _fixed_frame(self, runs: list[_Followed]) -> tuple[pl.DataFrame, list[_Followed]]:
        """The runs table without its changing columns, sorted, and the runs in its order:
        built again only when a run appears or a run.json field other than the heartbeat,
        runtime, state or summary changes."""
        key = tuple((f.folder, f.fixed) for f in runs)
        if self._fixed is None or self._fixed[0] != key:
            records = [
                {**{k: v for k, v in f.parsed.record.items() if k != "summary"}, "id": f.run_id}
                for f in runs
                if f.parsed is not None
            ]
            frame = build_runs_frame(records).with_row_index("_order")
            if frame.height:
                frame = frame.sort("created_at", "id", nulls_last=True)
            order = [runs[i] for i in frame["_order"].to_list()]
            self._fixed = (key, frame.drop("_order"), order)
        return self._fixed[1], self._fixed[2]

    def _runs_table(self) -> tuple[pl.DataFrame, list[str], list[float]]:
        fixed, ordered = self._fixed_frame(self._followed_runs())
        if not ordered:
            return fixed, [], []
        rows, starts = [], []
        for followed in ordered:
            assert followed.parsed is not None
            row, start = run_row(
                followed.parsed,
                last_values=followed.last_values,
                first_wall=followed.first_wall,
                last_wall=followed.last_wall,
                incomplete_tail=0,  # a tail is expected while following: it is read next time
                stale_after=self.stale_after,
            )
            rows.append(row)
            starts.append(start)
        frame = fixed.with_columns(
            pl.Series("state", [r["state"] for r in rows], dtype=pl.String),
            pl.Series("runtime", [r["runtime"] for r in rows], dtype=pl.Float64, strict=False),
        ).hstack(_summary_columns([r["summary"] for r in rows]))
        return frame, [f.run_id for f in ordered], starts


def _read_from(path: Path, offset: int, length: int) -> bytes:
    """`length` bytes at `offset` of a regular file (OSError for a FIFO or device)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{shown(path)}: not a regular file")
        return os.pread(descriptor, length, offset)
    finally:
        os.close(descriptor)
