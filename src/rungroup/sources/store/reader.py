"""Load rungroup's own store (see `rungroup.store` and docs/store.md) into `Runs`."""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections import deque
from collections.abc import Container, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rungroup import store
from rungroup.compact_history import CompactBuilder
from rungroup.runs import LoadWarning, Runs, build_runs_frame
from rungroup.sources.files import read_bytes
from rungroup.sources.runrecords import progress as progress_bars
from rungroup.sources.runrecords import shown

#: A running run whose heartbeat is older than this (seconds) is taken to have crashed.
STALE_AFTER = 120.0


def _warn(message: str) -> None:
    warnings.warn(message, LoadWarning, stacklevel=4)


def is_store(path: Path) -> bool:
    """A run folder, a project folder or a store root (checked two levels down)."""
    if not path.is_dir():
        return False
    if _has_meta(path):
        return True
    for child in _subfolders(path):
        if _has_meta(child):
            return True
        if any(_has_meta(grandchild) for grandchild in _subfolders(child)):
            return True
    return False


def _has_meta(folder: Path) -> bool:
    """True when `folder` holds a run.json (False for a folder that cannot be read)."""
    try:
        return (folder / store.META_FILE).is_file()
    except OSError:
        return False


def _subfolders(path: Path, *, loading: bool = False) -> Iterator[Path]:
    """The folders in `path` (hidden ones left out). An unreadable folder is a warning when
    `loading` (silent while only detecting); a symlink loop or broken link is skipped."""
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as error:
        if loading:
            _warn(f"{shown(path)}: folder not read ({error.strerror or error}); skipped")
        return
    for entry in entries:
        try:
            if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=True):
                yield Path(entry.path)
        except OSError:
            continue


def _run_folders(path: Path, project: str | None, known: Container[Path] = ()) -> list[Path]:
    """The run folders below `path`; those in `known` (a follower's, seen with a run.json
    before) are not stat-ed again."""
    if _has_meta(path):
        return [path]
    children = list(_subfolders(path, loading=True))
    if any(_has_meta(child) for child in children):
        projects = [path]  # `path` is a project folder
    else:
        projects = [c for c in children if project is None or c.name == project]
        if project is not None and not projects:
            names = ", ".join(c.name for c in children) or "none"
            raise ValueError(f"no project {project!r} in {path}; projects: {names}")
    folders = []
    for project_dir in projects:
        for folder in _subfolders(project_dir, loading=True):
            try:
                if folder in known or (folder / store.META_FILE).is_file():
                    folders.append(folder)
                elif (folder / store.HISTORY_FILE).exists():
                    _warn(f"{shown(folder)}: has a history but no {store.META_FILE}; run skipped")
            except OSError as error:
                _warn(f"{shown(folder)}: folder not read ({error.strerror}); skipped")
    return folders


def _parse_time(value: Any, label: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        _warn(f"{label}: {value!r} is not an ISO time; left empty")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # unknown: let the heartbeat decide
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def _state(meta: dict[str, Any], heartbeat: datetime | None, stale_after: float) -> str:
    state = meta.get("state")
    if state in ("finished", "failed", "crashed"):
        return str(state)
    if state != "running":
        _warn(f"run {meta['id']}: unknown state {state!r}; shown as crashed")
        return "crashed"
    if meta.get("host") == socket.gethostname() and not _pid_alive(meta.get("pid")):
        return "crashed"
    if heartbeat is None or time.time() - heartbeat.timestamp() > stale_after:
        return "crashed"
    return "running"


def _clean_meta(meta: dict[str, Any], label: str) -> dict[str, Any]:
    """Coerce each field to its schema type; a wrong one is warned about, never fatal."""
    clean: dict[str, Any] = {"id": meta["id"]}
    for key in ("name", "project", "group", "job_type"):
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            _warn(f"{label}: {key} {value!r} is not text; converted")
            value = str(value)
        clean[key] = value
    clean["name"] = clean["name"] or meta["id"]
    tags = meta.get("tags") or []
    if not isinstance(tags, list):
        _warn(f"{label}: tags {tags!r} is not a list; ignored")
        tags = []
    clean["tags"] = [str(t) for t in tags]
    for key in ("config", "summary"):
        value = meta.get(key) or {}
        if not isinstance(value, dict):
            _warn(f"{label}: {key} is not an object; ignored")
            value = {}
        clean[key] = value
    runtime = meta.get("runtime")
    clean["runtime"] = float(runtime) if isinstance(runtime, (int, float)) else None
    return clean


def with_timestamp(frame: pl.LazyFrame, run_ids: list[str], starts: list[float]) -> pl.LazyFrame:
    """Add the wall-clock `timestamp` = run start + `time`, in the history schema's order.

    It is derived when a query asks for it rather than stored: 8 bytes a point saved.
    """
    physical = pl.Series(run_ids, dtype=pl.Categorical).to_physical()
    start_us = pl.Series([round(s * 1e6) for s in starts], dtype=pl.Int64)
    timestamp = (
        pl.col("run_id").to_physical().replace_strict(physical, start_us, return_dtype=pl.Int64)
        + (pl.col("time") * 1e6).round().cast(pl.Int64)
    ).cast(pl.Datetime("us", "UTC"))
    return frame.select("run_id", "metric", "step", "time", timestamp.alias("timestamp"), "value")


def _add_run(history: CompactBuilder, decoded: store.DecodedHistory, start: float) -> None:
    """One run's decoded records into the compact history, times relative to `start`."""
    codes = np.asarray([history.code(n) for n in decoded.names], np.uint32)
    records = decoded.records
    steps = np.concatenate([r.steps for r in records]) if records else np.empty(0, np.int64)
    walls = np.concatenate([r.walls for r in records]) if records else np.empty(0)
    indices = (
        np.concatenate([r.metric_indices for r in records]) if records else np.empty(0, np.uint32)
    )
    values = np.concatenate([r.values for r in records]) if records else np.empty(0)
    history.add(steps, walls - start, codes[indices], values)


@dataclass(frozen=True)
class RunMeta:
    """What a run's row takes from its run.json alone: parsed once per version of the file
    (a follower re-reads run.json on every heartbeat, but derives this only then)."""

    meta: dict[str, Any]
    folder: Path
    #: the row's fields from run.json (`_clean_meta`) plus `created_at` and `source`
    record: dict[str, Any]
    created: datetime | None
    heartbeat: datetime | None


def parse_run_meta(meta: dict[str, Any], folder: Path) -> RunMeta:
    meta_path = str(folder / store.META_FILE)
    record = _clean_meta(meta, meta_path)
    created = _parse_time(meta.get("created_at"), meta_path)
    heartbeat = _parse_time(meta.get("heartbeat_at"), meta_path)
    record.update(created_at=created, source=f"rungroup:{shown(folder)}")
    return RunMeta(meta, folder, record, created, heartbeat)


def run_start(parsed: RunMeta, first_wall: float | None) -> float:
    """Unix seconds that a run's `time` counts from: its creation, else its first point."""
    return parsed.created.timestamp() if parsed.created else (first_wall or 0.0)


def run_row(
    parsed: RunMeta,
    *,
    last_values: dict[str, float],
    first_wall: float | None,
    last_wall: float | None,
    incomplete_tail: int,
    stale_after: float,
    unless_running: list[str] | None = None,
) -> tuple[dict[str, Any], float]:
    """One run's row of `Runs.runs` (as a dict) and its start time (Unix seconds).

    `unless_running` are problems that a run being written has for a moment (its history not
    created yet): warned about only when the run is not running."""
    state = _state(parsed.meta, parsed.heartbeat, stale_after)
    if state != "running":
        for problem in unless_running or ():
            _warn(problem)
    if incomplete_tail and state != "running":
        _warn(
            f"{parsed.folder / store.HISTORY_FILE}: the last record is torn "
            f"({incomplete_tail} bytes, written when the run stopped); skipped"
        )
    start = run_start(parsed, first_wall)
    record = {
        **parsed.record,
        "state": state,
        "summary": {**last_values, **parsed.record["summary"]},
    }
    if last_wall is not None and parsed.created is not None:
        logged_runtime = last_wall - start
        if state != "finished" or record["runtime"] is None:
            record["runtime"] = max(record["runtime"] or 0.0, logged_runtime)
    return record, start


@dataclass
class _RunFiles:
    """What a reader thread got from one run folder; warnings are raised by the caller."""

    folder: Path
    meta: dict[str, Any] | None
    history: store.DecodedHistory
    problems: list[str]
    #: keeps the bytes alive while `history` holds views into them
    data: bytes = b""
    #: problems that are no problem while the run is running (see `run_row`)
    unless_running: list[str] = field(default_factory=list)


def _read_run(folder: Path) -> _RunFiles:
    meta_path = folder / store.META_FILE
    try:
        meta = store.read_meta(meta_path)
    except ValueError as error:
        return _RunFiles(folder, None, store.DecodedHistory(), [f"{error}; run skipped"])
    history_path = folder / store.HISTORY_FILE
    problems = []
    unless_running = []
    try:
        data = read_bytes(history_path)
    except FileNotFoundError:
        unless_running.append(f"{history_path}: missing; the run is loaded without history")
        data = b""
    except OSError as error:
        problems.append(
            f"{history_path}: cannot be read ({error.strerror}); loaded without history"
        )
        data = b""
    else:
        if not data:
            unless_running.append(
                f"{history_path}: is empty (0 bytes, not even its header), though the run "
                "stopped; loaded without history"
            )
    history = store.decode_history(data, str(history_path))
    return _RunFiles(folder, meta, history, problems + history.problems, data, unless_running)


def _read_ahead(folders: list[Path], ahead: int = 4) -> Iterator[_RunFiles]:
    """Read and decode runs on two threads (file reads, CRCs and copies release the GIL),
    keeping only a few runs in flight so that memory stays near the size of the result."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="rungroup-load") as pool:
        pending: deque[Future[_RunFiles]] = deque()
        queue = iter(folders)
        for folder in queue:
            pending.append(pool.submit(_read_run, folder))
            if len(pending) >= ahead:
                break
        while pending:
            result = pending.popleft().result()
            for folder in queue:
                pending.append(pool.submit(_read_run, folder))
                break
            yield result


def load_store(
    path: str | os.PathLike[str],
    *,
    project: str | None = None,
    stale_after: float = STALE_AFTER,
    progress_bar: bool | None = None,
    progress: bool | None = None,
    out_of_core: bool = False,
) -> Runs:
    """Read a store root, a project folder or a single run folder.

    Unreadable runs are skipped with a `LoadWarning` naming the file; every other run loads.
    `progress_bar`: as for every source, a bar past `PROGRESS_THRESHOLD` runs when None;
    `progress` is its old name, accepted with a DeprecationWarning. `out_of_core`: keep the
    history on disk in a per-metric column cache, read run by run when a view needs it (a
    history larger than memory; docs/architecture.md, "Out of core").
    """
    if progress is not None:
        warnings.warn(
            "load_store(progress=...) is deprecated: use progress_bar=..., as every source does",
            DeprecationWarning,
            stacklevel=2,
        )
        progress_bar = progress if progress_bar is None else progress_bar
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such folder: {root}")
    if out_of_core:  # the history kept on disk, by metric (outofcore.py)
        from rungroup.sources.store.outofcore import load_out_of_core

        return load_out_of_core(
            root, project=project, stale_after=stale_after, progress_bar=progress_bar
        )
    folders = _run_folders(root, project)
    sizes = []
    for folder in folders:
        try:
            sizes.append((folder / store.HISTORY_FILE).stat().st_size)
        except OSError:
            sizes.append(0)
    history = CompactBuilder(sum(max(0, s - 8) for s in sizes) // store.POINT_BYTES)
    records: list[dict[str, Any]] = []
    run_ids: list[str] = []
    starts: list[float] = []
    # ids are unique within a project: the key of a run is (project folder, id)
    seen: dict[tuple[Path, str], Path] = {}
    ids: set[str] = set()
    reads = _read_ahead(folders)
    for files in progress_bars(reads, total=len(folders), desc="store", enabled=progress_bar):
        meta, decoded, folder = files.meta, files.history, files.folder
        for problem in files.problems:
            _warn(problem)
        if meta is None:
            continue
        meta_path = folder / store.META_FILE
        run_id = meta["id"]
        key = (folder.parent, run_id)
        if key in seen:
            _warn(f"{meta_path}: run id {run_id!r} is also used by {seen[key]}; run skipped")
            continue
        seen[key] = meta_path
        if run_id in ids:  # the same id in another project: a Runs needs unique ids
            run_id = f"{folder.parent.name}/{run_id}"
            meta = {**meta, "id": run_id}
        ids.add(run_id)
        walls = [r.walls for r in decoded.records]
        record, start = run_row(
            parse_run_meta(meta, folder),
            last_values=decoded.last_values(),
            first_wall=float(walls[0][0]) if walls else None,
            last_wall=max(float(w.max()) for w in walls) if walls else None,
            incomplete_tail=decoded.incomplete_tail,
            stale_after=stale_after,
            unless_running=files.unless_running,
        )
        _add_run(history, decoded, start)
        records.append(record)
        run_ids.append(run_id)
        starts.append(start)
    runs = build_runs_frame(records).sort("created_at", "id", nulls_last=True)
    compact = history.build(run_ids, starts)
    result = Runs(runs, compact.lazy(), validate=False)
    # Known from the names table: `Runs.metrics` would scan the whole history for them.
    result._metrics = tuple(compact.logged)
    return result
