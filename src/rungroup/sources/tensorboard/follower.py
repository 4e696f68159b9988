"""Following a TensorBoard log folder while event files are written: each poll reads only the
bytes appended since the last one.

A `TensorBoardFollower` keeps, for every event file, the offset just past its last complete
TFRecord (`uint64 length, uint32 crc, data, uint32 crc`). A poll lists the run folders and
their event files again (new runs and new files are picked up), reads each file from its
offset to its current size, decodes the complete records with `load_tensorboard`'s decoder
and leaves a record still being written for the next poll. The tag -> plugin map, which
TensorBoard writes only with a tag's first value, is kept per file across polls.

The points are kept with their wall time; `time` and `timestamp` are derived from each run's
first wall time when the history is queried, as `load_tensorboard` derives them.
"""

from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rungroup.runs import HISTORY_SCHEMA, LoadWarning, Runs
from rungroup.sources.files import read_bytes
from rungroup.sources.follow_common import LAST_SCHEMA, last_chunk, update_last
from rungroup.sources.runrecords import assemble, shown, warn
from rungroup.sources.tensorboard.decode import Scalars, decode_events
from rungroup.sources.tensorboard.events import (
    find_run_files,
    merge_hparams_folders,
    run_record,
    timed_points,
)
from rungroup.sources.tensorboard.layout import simple_values
from rungroup.sources.tensorboard.records import frame_records

__all__ = ["TensorBoardFollower", "complete_length"]

#: Merge the points' chunks once there are more than this many (appends add one a poll).
MAX_CHUNKS = 32
_LENGTH = struct.Struct("<Q")
_POINTS_SCHEMA = {
    "run_id": pl.Categorical,
    "metric": pl.String,
    "step": pl.Int64,
    "wall": pl.Float64,
    "value": pl.Float64,
}


def complete_length(data: bytes) -> int:
    """How many leading bytes of `data` (starting at a record) are whole TFRecords."""
    return _complete(data)[0]


def _complete(data: bytes) -> tuple[int, int]:
    """(bytes, records) of the whole TFRecords at the start of `data`."""
    pos = 0
    count = 0
    size = len(data)
    while pos + 12 <= size:
        end = pos + 12 + _LENGTH.unpack_from(data, pos)[0] + 4
        if end > size:
            break
        pos = end
        count += 1
    return pos, count


@dataclass
class _File:
    offset: int = 0
    plugins: dict[str, str] = field(default_factory=dict)


@dataclass
class _Run:
    """What is known of one run folder between polls."""

    files: dict[Path, _File] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    state: str | None = None
    first_wall: float | None = None
    last_wall: float | None = None
    run_id: str = ""


class TensorBoardFollower:
    """Polls a TensorBoard log folder (or template, or one event file); `poll()` returns the
    current `Runs` and whether it changed.

    Options are those of `load_tensorboard`; every poll returns what
    ``load_tensorboard(source, **options)`` would return for the complete records written
    by then.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        project: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        name: str | None = None,
        hparams: bool = True,
        check_crc: bool = True,
    ) -> None:
        self.source = os.fspath(source)
        find_run_files(self.source)  # raises FileNotFoundError for a missing folder
        self.options = {
            "project": project,
            "group": group,
            "job_type": job_type,
            "name": name,
            "hparams": hparams,
        }
        self.check_crc = check_crc
        self._runs: dict[Path, _Run] = {}
        self._points = pl.DataFrame(schema=_POINTS_SCHEMA)
        self._last = pl.DataFrame(schema=LAST_SCHEMA)
        self._current: Runs | None = None
        #: bytes of event files read by the last poll (what "only what changed" costs)
        self.bytes_read = 0

    def poll(self) -> tuple[Runs, bool]:
        """Read what changed since the last poll; `changed` is False when nothing did."""
        self.bytes_read = 0
        root, templated, run_files = find_run_files(self.source)
        folders = [folder for folder, _, _ in run_files]
        changed = list(self._runs) != folders
        for gone in set(self._runs) - set(folders):
            self._forget(self._runs.pop(gone))
        blocks: list[pl.DataFrame] = []
        owners: list[str] = []
        pending: list[tuple[_Run, Path, str, bytes, int, bool]] = []
        for folder, _fields, files in run_files:
            run = self._runs.get(folder)
            if run is None:
                run = self._runs[folder] = _Run()
                relative = folder.relative_to(root).as_posix() if folder != root else folder.name
                run.run_id = shown(relative or folder.name)
            if self._shrunk(run, files):
                self._forget(run)
                changed = True
            for path, prefix in files:
                taken = self._take(run, path)
                if taken is not None:
                    changed = True
                    pending.append((run, path, prefix, *taken))
        self._runs = {folder: self._runs[folder] for folder in folders}
        self._decode(pending, blocks, owners)
        if blocks:
            # One run_id column for all the new points (not one select per run).
            heights = np.asarray([b.height for b in blocks])
            names = sorted(set(owners))
            codes = np.repeat(np.asarray([names.index(o) for o in owners], np.uint32), heights)
            run_ids = pl.Series("run_id", names, dtype=pl.Categorical).gather(codes)
            new = pl.concat(blocks).select(
                pl.lit(run_ids).alias("run_id"), "metric", "step", "wall", "value"
            )
            self._points = pl.concat([self._points, new], rechunk=False)
            if self._points.n_chunks() > MAX_CHUNKS:
                self._points = self._points.rechunk()
            self._last = update_last(self._last, new)
        if changed or self._current is None:
            self._current = self._assemble(root, templated, run_files)
            return self._current, True
        return self._current, False

    def _shrunk(self, run: _Run, files: list[tuple[Path, str]]) -> bool:
        """True when an event file got shorter or went away (rewritten: read the run again)."""
        present = {path for path, _ in files}
        if any(path not in present for path in run.files):
            return True
        for path, _ in files:
            known = run.files.get(path)
            if known is None:
                continue
            try:
                if path.stat().st_size < known.offset:
                    warn(path, f"shrank below {known.offset} bytes; read again")
                    return True
            except OSError:
                return True
        return False

    def _forget(self, run: _Run) -> None:
        self._points = self._points.filter(pl.col("run_id").cast(pl.String) != run.run_id)
        self._last = self._last.filter(pl.col("run_id") != run.run_id)
        run.files.clear()
        run.hparams = {}
        run.group = run.state = None
        run.first_wall = run.last_wall = None

    def _take(self, run: _Run, path: Path) -> tuple[bytes, int, bool] | None:
        """(bytes, count, first read of the file) of the records completed since the last
        read, or None."""
        known = run.files.setdefault(path, _File())
        try:
            if path.stat().st_size == known.offset:
                return None  # nothing appended (a stat is cheaper than an open)
            data = read_bytes(path, offset=known.offset)
        except OSError as error:
            warn(path, f"not read ({error})")
            return None
        self.bytes_read += len(data)
        complete, count = _complete(data)
        if complete == 0:
            return None
        first = known.offset == 0
        known.offset += complete
        return data[:complete], count, first

    def _decode(
        self,
        pending: list[tuple[_Run, Path, str, bytes, int, bool]],
        blocks: list[pl.DataFrame],
        owners: list[str],
    ) -> None:
        """Decode the new records of every file into `blocks` (metric, step, wall, value),
        each owned by a run in `owners`.

        The records of all files are framed, checked and decoded together when they all
        have tensorboardX's one-scalar layout (what a training loop writes between two
        polls): one pass over all files instead of a fixed cost per file. Files with any
        other record (the first poll, hparams, TF2 tensors) go through the decoder one by
        one."""
        if not pending:
            return
        # A file's first records (its file_version event, hparams) are never all simple.
        candidates = [item for item in pending if not item[5]]
        batched: set[int] = set()
        if len(candidates) > 1:
            batched = self._decode_batch(candidates, blocks, owners)
        for index, (run, path, prefix, data, _, _) in enumerate(candidates):
            if index not in batched:
                read = self._decode_file(run, path, prefix, data)
                blocks += read
                owners += [run.run_id] * len(read)
        for run, path, prefix, data, _, first in pending:
            if first:
                read = self._decode_file(run, path, prefix, data)
                blocks += read
                owners += [run.run_id] * len(read)

    def _decode_batch(
        self,
        pending: list[tuple[_Run, Path, str, bytes, int, bool]],
        blocks: list[pl.DataFrame],
        owners: list[str],
    ) -> set[int]:
        """Frame, check and decode the records of all `pending` files in one pass; the
        rows of the files whose records were all simple scalars go to `blocks`. Returns
        the indices of those files (the others are left to the per-file decoder)."""
        big = b"".join(item[3] for item in pending)
        sizes = np.asarray([len(item[3]) for item in pending], np.int64)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        with warnings.catch_warnings():
            warnings.simplefilter("error", LoadWarning)
            try:
                starts, ends = frame_records(big, pending[0][1], self.check_crc)
            except LoadWarning:
                return set()  # damage somewhere: the per-file decoder says where
        if len(starts) != sum(item[4] for item in pending):
            return set()
        untimed: list[tuple[int, float]] = []
        done, points = simple_values(big, (starts, ends), "", untimed)
        if untimed:
            return set()  # wall times that are not times: the per-file decoder warns
        owner = np.searchsorted(bounds, starts, side="right") - 1
        total = np.bincount(owner, minlength=len(pending))
        simple = np.bincount(owner[done], minlength=len(pending))
        all_simple = total == simple
        if points is not None:
            rows = owner[done]
            self._batch_rows(pending, points, rows, all_simple[rows], blocks, owners)
        return set(np.flatnonzero(all_simple).tolist())

    def _batch_rows(
        self,
        pending: list[tuple[_Run, Path, str, bytes, int, bool]],
        block: pl.DataFrame,
        rows: np.ndarray[Any, Any],
        keep: np.ndarray[Any, Any],
        blocks: list[pl.DataFrame],
        owners: list[str],
    ) -> None:
        """The batch-decoded rows of the files whose records were all simple scalars."""
        block = block.filter(pl.Series(keep))
        rows = rows[keep]
        if not block.height:
            return
        prefixes = [item[2] for item in pending]
        if any(prefixes):
            block = block.with_columns(
                (pl.Series(prefixes, dtype=pl.String).gather(rows) + pl.col("metric")).alias(
                    "metric"
                )
            )
        # Rows are in file order: one slice per file, owned by its run.
        cuts = np.flatnonzero(np.diff(rows)) + 1
        for start, stop in zip(
            np.concatenate([[0], cuts]).tolist(),
            np.concatenate([cuts, [len(rows)]]).tolist(),
            strict=True,
        ):
            part = block.slice(start, stop - start)
            run = pending[int(rows[start])][0]
            low, high = part["wall"].min(), part["wall"].max()  # as `decode_events` does
            if isinstance(low, float) and low == low:
                run.first_wall = low if run.first_wall is None else min(run.first_wall, low)
            if isinstance(high, float) and high == high:
                run.last_wall = high if run.last_wall is None else max(run.last_wall, high)
            blocks.append(part)
            owners.append(run.run_id)

    def _decode_file(self, run: _Run, path: Path, prefix: str, data: bytes) -> list[pl.DataFrame]:
        """The points of one file's new records, through `load_tensorboard`'s decoder."""
        known = run.files[path]
        scalars = Scalars(
            first_wall=run.first_wall,
            last_wall=run.last_wall,
            hparams=run.hparams,
            group=run.group,
            state=run.state,
        )
        decode_events(data, path, prefix, scalars, self.check_crc, known.plugins)
        run.hparams = scalars.hparams
        run.group = scalars.group
        run.state = scalars.state
        run.first_wall = scalars.first_wall
        run.last_wall = scalars.last_wall
        return [b for b in scalars.blocks if b.height]

    def _assemble(
        self,
        root: Path,
        templated: bool,
        run_files: list[tuple[Path, dict[str, Any], list[tuple[Path, str]]]],
    ) -> Runs:
        parsed: dict[Path, tuple[dict[str, Any], Scalars]] = {}
        for folder, fields, _ in run_files:
            run = self._runs[folder]
            parsed[folder] = (
                fields,
                Scalars(
                    first_wall=run.first_wall,
                    last_wall=run.last_wall,
                    hparams=dict(run.hparams),
                    group=run.group,
                    state=run.state,
                ),
            )
        merge_hparams_folders(parsed, root, templated)
        records = []
        firsts: dict[str, float] = {}
        for folder, (fields, scalars) in parsed.items():
            record = run_record(folder, fields, scalars, root, self.options)
            records.append(record)
            firsts[record.id] = scalars.first_wall if scalars.first_wall is not None else 0.0
        runs_frame = assemble(records, [last_chunk(self._last, firsts)]).runs
        first_frame = pl.DataFrame(
            {"run_id": list(firsts), "first": list(firsts.values())},
            schema={"run_id": pl.Categorical, "first": pl.Float64},
        )
        joined = self._points.lazy().join(
            first_frame.lazy(), on="run_id", how="inner", maintain_order="left"
        )
        history = timed_points(joined, pl.col("run_id"), pl.col("first")).select(
            [pl.col(column).cast(dtype) for column, dtype in HISTORY_SCHEMA.items()]
        )
        return Runs(runs_frame, history, validate=False)
