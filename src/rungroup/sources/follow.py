"""Following a store while runs are written: each poll reads only what changed.

A `StoreFollower` remembers, for every run folder, how far its history file has been read
and when its `run.json` last changed. A poll stats every folder, reads the bytes appended
since the last poll (up to the last complete record: a record being written is left for the
next poll), re-reads the metadata that changed, re-derives the states (a run whose process
died becomes `crashed`), and appends the new points to the history frame instead of
rebuilding it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rungroup import store
from rungroup.runs import HISTORY_SCHEMA, LoadWarning, Runs, build_runs_frame
from rungroup.sources.store import (
    STALE_AFTER,
    _parse_time,
    _run_folders,
    run_record,
    with_timestamp,
)

#: Merge the history's chunks once there are more than this many (appends add one a poll).
MAX_CHUNKS = 32


def _warn(message: str) -> None:
    warnings.warn(message, LoadWarning, stacklevel=4)


@dataclass
class _Followed:
    """What is known of one run folder between polls."""

    folder: Path
    meta: dict[str, Any] | None = None
    meta_stamp: tuple[int, int] | None = None
    offset: int = 0
    names: list[str] = field(default_factory=list)
    last_values: dict[str, float] = field(default_factory=dict)
    first_wall: float | None = None
    last_wall: float | None = None
    incomplete_tail: int = 0
    points: int = 0


@dataclass
class _NewPoints:
    """One run's points read by one poll; `indices` point into `names`."""

    run_id: str
    names: list[str]
    steps: np.ndarray
    times: np.ndarray
    indices: np.ndarray
    values: np.ndarray


def _chunk_frame(parts: list[_NewPoints]) -> pl.DataFrame:
    """One history chunk for all the runs a poll read: two categorical columns built once
    per poll rather than once per run (a hundred runs logging made that most of a poll)."""
    names: dict[str, int] = {}
    codes = []
    for part in parts:
        lookup = np.asarray([names.setdefault(n, len(names)) for n in part.names], np.uint32)
        codes.append(lookup[part.indices])
    counts = pl.Series([len(part.values) for part in parts], dtype=pl.UInt32)
    run_ids = pl.Series("run_id", [part.run_id for part in parts], dtype=pl.Categorical)
    return pl.DataFrame(
        [
            run_ids.to_frame().select(pl.col("run_id").repeat_by(counts).explode()).to_series(),
            pl.Series("metric", list(names), dtype=pl.Categorical).gather(np.concatenate(codes)),
            pl.Series("step", np.concatenate([part.steps for part in parts])),
            pl.Series("time", np.concatenate([part.times for part in parts])),
            pl.Series("value", np.concatenate([part.values for part in parts])),
        ]
    )


class StoreFollower:
    """Polls a rungroup store; `poll()` returns the current `Runs` and whether it changed."""

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
        self._history = pl.DataFrame(
            schema={k: v for k, v in HISTORY_SCHEMA.items() if k != "timestamp"}
        )
        self._runs_frame: pl.DataFrame | None = None
        self._current: Runs | None = None
        #: bytes of history read by the last poll (what "only what changed" costs)
        self.bytes_read = 0

    def poll(self) -> tuple[Runs, bool]:
        """Read what changed since the last poll; `changed` is False when nothing did."""
        self.bytes_read = 0
        folders = _run_folders(self.root, self.project) if self.root.is_dir() else []
        changed = False
        new_points: list[_NewPoints] = []
        for folder in folders:
            followed = self._runs.get(folder)
            if followed is None:
                followed = self._runs[folder] = _Followed(folder)
            meta_changed = self._refresh_meta(followed)
            points = self._read_history(followed)
            if points is not None:
                new_points.append(points)
            changed = changed or meta_changed or points is not None
        if new_points:
            chunk = _chunk_frame(new_points)
            self._history = pl.concat([self._history, chunk], rechunk=False)
            if self._history.n_chunks() > MAX_CHUNKS:
                self._history = self._history.rechunk()
        runs_frame, run_ids, starts = self._runs_table()
        states_changed = self._runs_frame is None or not runs_frame.equals(self._runs_frame)
        if changed or states_changed or self._current is None:
            self._runs_frame = runs_frame
            history = with_timestamp(self._history.lazy(), run_ids, starts)
            self._current = Runs(runs_frame, history, validate=False)
            return self._current, True
        return self._current, False

    def _refresh_meta(self, followed: _Followed) -> bool:
        path = followed.folder / store.META_FILE
        try:
            status = path.stat()
        except OSError:
            return False
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp == followed.meta_stamp:
            return False
        followed.meta_stamp = stamp
        try:
            meta = store.read_meta(path)
        except ValueError as error:
            _warn(f"{error}; run skipped")
            followed.meta = None
            return True
        followed.meta = meta
        return True

    def _read_history(self, followed: _Followed) -> _NewPoints | None:
        """The points appended since the last read (None if none)."""
        if followed.meta is None:
            return None
        path = followed.folder / store.HISTORY_FILE
        try:
            size = path.stat().st_size
        except OSError:
            return None
        if size < followed.offset:
            _warn(f"{path}: shrank from {followed.offset} to {size} bytes; read again")
            self._forget_points(followed)
        if size == followed.offset:
            return None
        with path.open("rb") as handle:
            handle.seek(followed.offset)
            data = handle.read(size - followed.offset)
        self.bytes_read += len(data)
        decoded = store.decode_history(data, str(path), offset=followed.offset)
        for problem in decoded.problems:
            _warn(problem)
        followed.offset += len(data) - decoded.incomplete_tail
        followed.incomplete_tail = decoded.incomplete_tail
        if not decoded.records:
            return None
        for name in decoded.names:
            if name not in followed.names:
                followed.names.append(name)
        positions = np.asarray([followed.names.index(n) for n in decoded.names], np.uint32)
        steps = np.concatenate([r.steps for r in decoded.records])
        walls = np.concatenate([r.walls for r in decoded.records])
        indices = positions[np.concatenate([r.metric_indices for r in decoded.records])]
        values = np.concatenate([r.values for r in decoded.records])
        decoded_last = decoded.last_values()
        followed.last_values.update(decoded_last)
        if followed.first_wall is None:
            followed.first_wall = float(walls[0])
        followed.last_wall = max(followed.last_wall or -np.inf, float(walls.max()))
        followed.points += len(values)
        start = self._start(followed)
        return _NewPoints(
            str(followed.meta["id"]), followed.names, steps, walls - start, indices, values
        )

    def _start(self, followed: _Followed) -> float:
        assert followed.meta is not None
        created = _parse_time(followed.meta.get("created_at"), str(followed.folder))
        return created.timestamp() if created else (followed.first_wall or 0.0)

    def _forget_points(self, followed: _Followed) -> None:
        if followed.meta is not None and followed.points:
            run_id = str(followed.meta["id"])
            self._history = self._history.filter(pl.col("run_id") != run_id)
        followed.offset = 0
        followed.names = []
        followed.last_values = {}
        followed.first_wall = followed.last_wall = None
        followed.points = 0

    def _runs_table(self) -> tuple[pl.DataFrame, list[str], list[float]]:
        records, run_ids, starts = [], [], []
        seen: set[str] = set()
        for followed in self._runs.values():
            if followed.meta is None or followed.meta["id"] in seen:
                continue
            seen.add(followed.meta["id"])
            record, start = run_record(
                followed.meta,
                followed.folder,
                last_values=followed.last_values,
                first_wall=followed.first_wall,
                last_wall=followed.last_wall,
                incomplete_tail=0,  # a tail is expected while following: it is read next time
                stale_after=self.stale_after,
            )
            records.append(record)
            run_ids.append(str(followed.meta["id"]))
            starts.append(start)
        frame = build_runs_frame(records)
        if frame.height:
            frame = frame.sort("created_at", "id", nulls_last=True)
        return frame, run_ids, starts
