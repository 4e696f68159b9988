"""rungroup's store loaded out of core: the history stays on disk, by metric.

``rungroup.load(store, out_of_core=True)`` decodes each run's history file once, run by
run, into a per-metric column cache (in ``RUNGROUP_CACHE_DIR``/outofcore; never inside the
store), and returns `Runs` whose history is read from it when asked:

- ``steps.i64`` / ``times.f64``: per run, its rows (a row: the points logged at one step and
  wall time; time relative to the run's start, as the in-memory history holds it);
- ``values.f64``: per run, per metric, that metric's values in logged order (a *block*), so
  that one metric of a run is one contiguous read;
- ``rows.u32``: for a block that is not at every row of its run, the row of each value;
- ``index.npz``: where each run's rows and each block start, and each block's step and time
  range (a metric's x range over any runs without reading a point);
- ``manifest.json``: the store's files this was made of (path, size, mtime, inode) and what a
  run's row needs (last values, first and last wall time). A later load that finds every
  history file unchanged reads only the run.json files.

The returned `Runs` has `OutOfCoreHistory` as its history provider (engine/provider.py): the
engine's ``align="bucket"`` asks it for per-run bucket sums, which it streams run by run
through `engine.streaming` (one run's points of the asked metrics in memory at a time).
`Runs.history` is still the documented LazyFrame, built from the column files batch by
batch (a filter on the metric reads only that metric's blocks): other alignments read the
selected metric's points through it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import IO, Any

import numpy as np
import polars as pl
from polars.io.plugins import register_io_source

from rungroup import store
from rungroup.engine.provider import BucketSums
from rungroup.engine.streaming import RunPoints, stream_bucket_sums
from rungroup.runs import HISTORY_SCHEMA, LoadWarning, Runs, build_runs_frame
from rungroup.sources.cache import cache_dir
from rungroup.sources.runrecords import progress as progress_bars

#: The column cache's layout; a manifest of another version is rebuilt.
FORMAT = 1
#: Points per batch of `Runs.history` handed to Polars (whole runs; at least one).
BATCH_POINTS = 2_000_000
_COLUMNS = ("steps.i64", "times.f64", "values.f64", "rows.u32")


def _warn(message: str) -> None:
    warnings.warn(message, LoadWarning, stacklevel=4)


def _stamp(path: Path) -> list[int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return [status.st_size, status.st_mtime_ns, status.st_ino]


def _entry_folder(root: Path, project: str | None) -> Path:
    key = hashlib.sha256(f"{root.resolve()}\0{project}".encode()).hexdigest()[:24]
    return cache_dir() / "outofcore" / key


@dataclass
class _RunInfo:
    """What a run's row needs from its history, kept in the manifest."""

    folder: str
    stamp: list[int] | None
    last_values: dict[str, float]
    first_wall: float | None
    last_wall: float | None
    incomplete_tail: int
    problems: list[str]
    unless_running: list[str]


class _Writer:
    """Appends runs' decoded histories to the column files, run by run."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        self.files: dict[str, IO[bytes]] = {name: (folder / name).open("wb") for name in _COLUMNS}
        self.names: dict[str, int] = {}
        self.row_offsets = [0]
        self.values = 0
        self.rows_written = 0
        self.blocks: list[tuple[int, ...]] = []  # run, code, value, count, rows (-1: all)
        self.ranges: list[tuple[float, ...]] = []  # step min, max, time min, max

    def add(self, decoded: store.DecodedHistory, start: float) -> None:
        run = len(self.row_offsets) - 1
        records = decoded.records
        if not records:
            self.row_offsets.append(self.row_offsets[-1])
            return
        codes_of = np.asarray([self.names.setdefault(n, len(self.names)) for n in decoded.names])
        steps = np.concatenate([r.steps for r in records])
        times = np.concatenate([r.walls for r in records]) - start
        codes = codes_of[np.concatenate([r.metric_indices for r in records])]
        values = np.concatenate([r.values for r in records])
        # a new row where the step or the time changes (times by their bits, as
        # `CompactBuilder` splits them, so that -0.0 and 0.0 stay as logged)
        bits = times.view(np.int64)
        changed = (steps[1:] != steps[:-1]) | (bits[1:] != bits[:-1])
        firsts = np.concatenate(([0], np.flatnonzero(changed) + 1))
        row_of = np.cumsum(np.concatenate(([False], changed)), dtype=np.int64)
        row_steps, row_times = steps[firsts], times[firsts]
        rows = firsts.shape[0]
        self.files["steps.i64"].write(row_steps.tobytes())
        self.files["times.f64"].write(row_times.tobytes())
        self.row_offsets.append(self.row_offsets[-1] + rows)
        order = np.argsort(codes, kind="stable")  # each metric's points in logged order
        sorted_codes = codes[order]
        bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
        for part in np.split(order, bounds):
            code = int(codes[part[0]])
            block_rows = row_of[part]
            every_row = part.shape[0] == rows and bool(np.array_equal(block_rows, np.arange(rows)))
            rows_at = -1
            if not every_row:
                rows_at = self.rows_written
                self.files["rows.u32"].write(block_rows.astype(np.uint32).tobytes())
                self.rows_written += part.shape[0]
            self.files["values.f64"].write(values[part].tobytes())
            self.blocks.append((run, code, self.values, part.shape[0], rows_at))
            block_steps, block_times = row_steps[block_rows], row_times[block_rows]
            self.ranges.append(
                (
                    float(block_steps.min()),
                    float(block_steps.max()),
                    float(block_times.min()),
                    float(block_times.max()),
                )
            )
            self.values += part.shape[0]

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        blocks = np.asarray(self.blocks, np.int64).reshape(-1, 5)
        np.savez(
            self.folder / "index.npz",
            row_offsets=np.asarray(self.row_offsets, np.int64),
            blocks=blocks,
            ranges=np.asarray(self.ranges, np.float64).reshape(-1, 4),
        )


def _read(file: BufferedReader, dtype: Any, offset: int, count: int) -> np.ndarray:
    """`count` items of `dtype` from item `offset` of `file`, into a new array."""
    array = np.empty(count, dtype)
    if count:
        file.seek(offset * array.itemsize)
        got = file.readinto(array.data.cast("B"))
        if got != array.nbytes:
            raise OSError(f"{getattr(file, 'name', 'column file')}: ends early (cache damaged)")
    return array


class OutOfCoreHistory:
    """The column files of one load: `Runs.history` as a LazyFrame (`lazy`) and the history
    provider the engine asks for per-run bucket sums (`bucket_sums`)."""

    def __init__(
        self,
        folder: Path,
        metrics: list[str],
        run_ids: list[str],
        positions: list[int],
        starts: list[float],
    ) -> None:
        self.folder = folder
        self.metrics = metrics
        self.run_ids = run_ids
        #: each run's position in the column files (runs skipped at load are left out)
        self._positions = positions
        with np.load(folder / "index.npz") as index:
            self._row_offsets = index["row_offsets"]
            self._blocks = index["blocks"]
            self._ranges = index["ranges"]
        self._start_us = np.round(np.asarray(starts, np.float64) * 1e6).astype(np.int64)
        self._position = {run_id: k for k, run_id in enumerate(run_ids)}
        # blocks by run: they were written run by run, so each run's are a slice
        runs_of = self._blocks[:, 0] if self._blocks.size else np.zeros(0, np.int64)
        self._block_offsets = np.searchsorted(runs_of, np.arange(len(self._row_offsets)))
        #: every read of points goes through here (tests count what is held at once)
        self.reads = 0

    def __len__(self) -> int:
        return int(self._blocks[:, 3].sum()) if self._blocks.size else 0

    @property
    def logged(self) -> list[str]:
        """The names of the metrics with points in the loaded runs, sorted (`Runs.metrics`)."""
        codes: set[int] = set()
        for run in self._positions:
            blocks = self._blocks[self._block_offsets[run] : self._block_offsets[run + 1]]
            codes.update(int(code) for code in blocks[blocks[:, 3] > 0, 1])
        return sorted(self.metrics[code] for code in codes)

    def _open(self) -> dict[str, BufferedReader]:
        return {name: (self.folder / name).open("rb") for name in _COLUMNS}

    def _run_points(
        self, files: dict[str, BufferedReader], run: int, codes: dict[int, int], x: str
    ) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """One run's blocks of the metrics in `codes` (code -> position asked for): (position,
        rows of its values (None-free: every row is an arange), x at them, values)."""
        self.reads += 1
        row_begin = int(self._row_offsets[run])
        rows = int(self._row_offsets[run + 1]) - row_begin
        column = "steps.i64" if x == "step" else "times.f64"
        dtype = np.int64 if x == "step" else np.float64
        row_x: np.ndarray | None = None
        found = []
        for block in range(self._block_offsets[run], self._block_offsets[run + 1]):
            _, code, value_at, count, rows_at = (int(v) for v in self._blocks[block])
            if code not in codes:
                continue
            if row_x is None:
                row_x = _read(files[column], dtype, row_begin, rows)
            values = _read(files["values.f64"], np.float64, value_at, count)
            if rows_at < 0:
                at = np.arange(rows)
                found.append((codes[code], at, row_x, values))
            else:
                at = _read(files["rows.u32"], np.uint32, rows_at, count).astype(np.int64)
                found.append((codes[code], at, row_x[at], values))
        return found

    # -- the history provider ------------------------------------------------------------

    def bucket_sums(
        self, run_ids: list[str], metrics: list[str], x: str, bins: int
    ) -> BucketSums | None:
        if x not in ("step", "time"):
            return None  # a metric as x or timestamps: the engine reads the history
        codes = {self.metrics.index(m): k for k, m in enumerate(metrics) if m in self.metrics}
        runs = [self._positions[self._position[run_id]] for run_id in run_ids]
        lo = np.full(len(metrics), np.inf)
        hi = np.full(len(metrics), -np.inf)
        column = 0 if x == "step" else 2
        for run in runs:
            for block in range(self._block_offsets[run], self._block_offsets[run + 1]):
                k = codes.get(int(self._blocks[block, 1]))
                if k is not None and self._blocks[block, 3]:
                    lo[k] = min(lo[k], self._ranges[block, column])
                    hi[k] = max(hi[k], self._ranges[block, column + 1])

        def batches() -> Iterator[list[RunPoints]]:
            files = self._open()
            try:
                for position, run in enumerate(runs):
                    found = self._run_points(files, run, codes, x)
                    batch = [RunPoints(position, k, xs, v) for k, _, xs, v in found]
                    del found
                    yield batch
                    del batch
            finally:
                for file in files.values():
                    file.close()

        return stream_bucket_sums(batches(), lo, hi, bins)

    # -- the LazyFrame -------------------------------------------------------------------

    def lazy(self) -> pl.LazyFrame:
        """The long history (`HISTORY_SCHEMA`), read from the column files when a query runs;
        within a run, its points come metric by metric (each metric's in logged order)."""
        return register_io_source(
            self._frames, schema=HISTORY_SCHEMA, is_pure=True, explain_name="rungroup on disk"
        )

    def _kept_codes(self, predicate: pl.Expr | None) -> dict[int, int] | None:
        if predicate is None or predicate.meta.root_names() != ["metric"]:
            return None
        names = pl.DataFrame({"metric": pl.Series(self.metrics, dtype=pl.Categorical)})
        kept = names.select(predicate.fill_null(False)).to_series().to_numpy()
        return {int(code): int(code) for code in np.flatnonzero(kept)}

    def _frames(
        self,
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        columns = list(HISTORY_SCHEMA) if with_columns is None else with_columns
        kept = self._kept_codes(predicate)
        codes = kept if kept is not None else {k: k for k in range(len(self.metrics))}
        remaining = n_rows
        files = self._open()
        try:
            parts: list[pl.DataFrame] = []
            held = 0
            for index in range(len(self.run_ids)):
                frame = self._run_frame(files, index, codes, columns)
                if predicate is not None and kept is None:
                    frame = frame.filter(predicate)
                parts.append(frame)
                held += frame.height
                if held < BATCH_POINTS and index + 1 < len(self.run_ids):
                    continue
                batch = pl.concat(parts) if parts else frame
                parts, held = [], 0
                if remaining is not None:
                    batch = batch.head(remaining)
                    remaining -= batch.height
                if batch.height:
                    yield batch
                if remaining is not None and remaining <= 0:
                    return
        finally:
            for file in files.values():
                file.close()

    def _run_frame(
        self,
        files: dict[str, BufferedReader],
        index: int,
        codes: dict[int, int],
        columns: list[str],
    ) -> pl.DataFrame:
        """The `index`-th loaded run's points of the metrics in `codes`, as a frame."""
        run = self._positions[index]
        found = self._run_points(files, run, codes, "step")
        if found:
            code = np.concatenate([np.full(v.shape[0], c, np.uint32) for c, _, _, v in found])
            steps = np.concatenate([xs for _, _, xs, _ in found])
            values = np.concatenate([v for _, _, _, v in found])
            at = np.concatenate([a for _, a, _, _ in found])
        else:
            code, steps, values = np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0)
            at = np.zeros(0, np.int64)
        series: list[pl.Series] = []
        for name in columns:
            if name == "run_id":
                ids = pl.Series("run_id", [self.run_ids[index]], dtype=pl.Categorical)
                series.append(ids.gather(np.zeros(values.shape[0], np.uint32)))
            elif name == "metric":
                series.append(pl.Series("metric", self.metrics, dtype=pl.Categorical).gather(code))
            elif name == "step":
                series.append(pl.Series("step", steps, dtype=pl.Int64))
            elif name in ("time", "timestamp"):
                row_begin = int(self._row_offsets[run])
                rows = int(self._row_offsets[run + 1]) - row_begin
                times = _read(files["times.f64"], np.float64, row_begin, rows)[at]
                if name == "time":
                    series.append(pl.Series("time", times, dtype=pl.Float64))
                else:
                    # as `sources.store.reader.with_timestamp` derives it
                    offsets = (pl.Series(times) * 1e6).round().cast(pl.Int64)
                    micros = offsets + int(self._start_us[index])
                    series.append(micros.cast(pl.Datetime("us", "UTC")).alias("timestamp"))
            else:
                series.append(pl.Series("value", values, dtype=pl.Float64))
        return pl.DataFrame(series)


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("format") != FORMAT:
        return None
    return manifest


def _whole(folder: Path, manifest: dict[str, Any]) -> bool:
    """Whether every file of the generation has the size it was written with (a truncated or
    grown file is never read: its offsets would be wrong)."""
    sizes = manifest.get("sizes")
    if not isinstance(sizes, dict) or set(sizes) != {*_COLUMNS, "index.npz"}:
        return False
    return all(_size(folder / name) == size for name, size in sizes.items())


def _size(path: Path) -> int | None:
    stamp = _stamp(path)
    return None if stamp is None else stamp[0]


def load_out_of_core(
    root: Path, *, project: str | None, stale_after: float, progress_bar: bool | None
) -> Runs:
    """`load_store` with the history kept on disk (module docstring)."""
    from rungroup.sources.store import reader

    folders = reader._run_folders(root, project)
    entry = _entry_folder(root, project)
    pointer = entry / "current"
    current: Path | None = None
    manifest: dict[str, Any] | None = None
    try:
        current = entry / pointer.read_text().strip()
        manifest = _manifest(current)
    except OSError:
        pass
    stamps = [_stamp(folder / store.HISTORY_FILE) for folder in folders]
    # by their place in the store: the same store named by another path (relative, a link)
    # finds its cache
    places = [str(folder.relative_to(root)) for folder in folders]
    fresh = manifest is not None and manifest["runs"] == [
        [place, stamp] for place, stamp in zip(places, stamps, strict=True)
    ]
    if fresh and current is not None and manifest is not None and not _whole(current, manifest):
        _warn(f"{current}: out-of-core column cache damaged (a file's size changed); rebuilt")
        fresh = False
    if not fresh or current is None or manifest is None:
        current, manifest = _build(entry, folders, places, stamps, progress_bar)
    infos = [_RunInfo(**info) for info in manifest["infos"]]
    records: list[dict[str, Any]] = []
    run_ids: list[str] = []
    starts: list[float] = []
    kept: list[int] = []
    seen: dict[tuple[Path, str], Path] = {}
    ids: set[str] = set()
    for position, (folder, info) in enumerate(zip(folders, infos, strict=True)):
        for problem in info.problems:
            _warn(problem)
        meta_path = folder / store.META_FILE
        try:
            meta = store.read_meta(meta_path)
        except ValueError as error:
            _warn(f"{error}; run skipped")
            continue
        run_id = meta["id"]
        key = (folder.parent, run_id)
        if key in seen:
            _warn(f"{meta_path}: run id {run_id!r} is also used by {seen[key]}; run skipped")
            continue
        seen[key] = meta_path
        if run_id in ids:
            run_id = f"{folder.parent.name}/{run_id}"
            meta = {**meta, "id": run_id}
        ids.add(run_id)
        record, start = reader.run_row(
            reader.parse_run_meta(meta, folder),
            last_values=info.last_values,
            first_wall=info.first_wall,
            last_wall=info.last_wall,
            incomplete_tail=info.incomplete_tail,
            stale_after=stale_after,
            unless_running=info.unless_running,
        )
        records.append(record)
        run_ids.append(run_id)
        starts.append(start)
        kept.append(position)
    try:
        history = OutOfCoreHistory(current, manifest["metrics"], run_ids, kept, starts)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        # an index of the right size but unreadable content: rebuilt, never trusted
        _warn(f"{current}: out-of-core column cache damaged ({error}); rebuilt")
        current, manifest = _build(entry, folders, places, stamps, progress_bar)
        history = OutOfCoreHistory(current, manifest["metrics"], run_ids, kept, starts)
    runs = build_runs_frame(records).sort("created_at", "id", nulls_last=True)
    result = Runs(runs, history.lazy(), validate=False, provider=history)
    result._metrics = tuple(history.logged)
    return result


def _build(
    entry: Path,
    folders: list[Path],
    places: list[str],
    stamps: list[list[int] | None],
    progress_bar: bool | None,
) -> tuple[Path, dict[str, Any]]:
    """Decode every run's history into a new generation of the column files."""
    from rungroup.sources.store import reader

    name = uuid.uuid4().hex[:12]
    folder = entry / name
    writer: _Writer | None = None
    infos: list[dict[str, Any]] = []
    try:
        entry.mkdir(parents=True, exist_ok=True)
        writer = _Writer(folder)
        reads = reader._read_ahead(folders)
        for files in progress_bars(reads, total=len(folders), desc="store", enabled=progress_bar):
            decoded = files.history
            walls = [r.walls for r in decoded.records]
            start = 0.0
            if files.meta is not None:
                parsed = reader.parse_run_meta(files.meta, files.folder)
                start = reader.run_start(parsed, float(walls[0][0]) if walls else None)
            writer.add(decoded, start)
            infos.append(
                _RunInfo(
                    folder=str(files.folder),
                    stamp=None,
                    last_values=decoded.last_values(),
                    first_wall=float(walls[0][0]) if walls else None,
                    last_wall=max(float(w.max()) for w in walls) if walls else None,
                    incomplete_tail=decoded.incomplete_tail,
                    # an unreadable run.json is warned about by every load (it is read again)
                    problems=files.problems if files.meta is not None else [],
                    unless_running=files.unless_running,
                ).__dict__
            )
            del files, decoded, walls
        writer.close()
        sizes = {name: _size(folder / name) for name in (*_COLUMNS, "index.npz")}
        manifest = {
            "format": FORMAT,
            "sizes": sizes,
            "metrics": list(writer.names),
            "runs": [[p, s] for p, s in zip(places, stamps, strict=True)],
            "infos": infos,
        }
        (folder / "manifest.json").write_text(json.dumps(manifest))
        temporary = entry / f"current.{name}"
        temporary.write_text(name)
        temporary.replace(entry / "current")
    except BaseException as error:
        for file in writer.files.values() if writer is not None else ():
            file.close()
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
            raise OSError(
                error.errno,
                f"{entry}: the out-of-core column cache could not be written "
                f"({error.strerror or error}); it needs about 10 bytes a point: free space "
                f"there or set RUNGROUP_CACHE_DIR to a folder with room",
            ) from error
        raise
    for old in entry.iterdir():  # earlier generations (a reader holding one keeps its files)
        if old.is_dir() and old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return folder, manifest
