"""Following W&B run files while wandb writes them: each poll reads only appended bytes.

A `.wandb` file is LevelDB's log format (see `offline.py`): 32 KiB blocks of chunks, each
with its own CRC and length, a record split over blocks as first / middle / last chunks. The
file is only ever appended to, so a reader can take every record whose chunks are complete
and stop at the first one that is not: a `WandbFollower` keeps, for every file, the offset
just past its last complete record and the decoding state (the run so far, the last history
row and the summary records waiting for the next row), and a poll reads from that offset to
the file's current end. New run folders are picked up; a record being written is left for the
next poll. The states are re-derived on every poll (a run that stopped writing without an
exit record turns `crashed` after `offline.RUNNING_WITHIN` seconds, as in a fresh load).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from rungroup.runs import HISTORY_SCHEMA, Runs
from rungroup.sources.files import read_bytes
from rungroup.sources.follow_common import LAST_SCHEMA, last_chunk, update_last
from rungroup.sources.runrecords import CHUNK_SCHEMA, RunRecord, assemble, shown, warn
from rungroup.sources.wandb.offline import (
    HEADER,
    HEADER_SIZE,
    Reading,
    _find_files,
    _state,
    apply_records,
    run_chunk,
    run_ids,
    run_record,
    scan_records,
    settled,
)

__all__ = ["WandbFollower"]

#: Merge the points' chunks once there are more than this many (appends add one a poll).
MAX_CHUNKS = 32
_POINTS_SCHEMA: dict[str, pl.DataType] = {**CHUNK_SCHEMA, "run_id": pl.Categorical()}


@dataclass
class _File:
    """What is known of one .wandb file between polls."""

    offset: int = 0
    reading: Reading = field(default_factory=Reading)
    records: int = 0
    emitted: int = 0
    unreadable: bool = False


class WandbFollower:
    """Polls W&B run folders or files; `poll()` returns the current `Runs` and whether they
    changed. Options are those of `load_wandb`; every poll returns what
    ``load_wandb(source, **options)`` returns for the complete records written by then."""

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        project: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
    ) -> None:
        self.source = os.fspath(source)
        _find_files(self.source)  # raises FileNotFoundError for a missing source
        self.project = project
        self.group = group
        self.job_type = job_type
        self._files: dict[Path, _File] = {}
        self._points = pl.DataFrame(schema=_POINTS_SCHEMA)
        self._last = pl.DataFrame(schema=LAST_SCHEMA)
        self._states: list[str] = []
        self._current: Runs | None = None
        self._shrank = False
        #: bytes of .wandb files read by the last poll (what "only what changed" costs)
        self.bytes_read = 0

    @property
    def offsets(self) -> dict[Path, int]:
        """For every file: where its last complete record ends (the next poll reads on)."""
        return {path: known.offset for path, known in self._files.items()}

    def poll(self) -> tuple[Runs, bool]:
        """Read what changed since the last poll; `changed` is False when nothing did."""
        self.bytes_read = 0
        paths = _find_files(self.source)
        changed = list(self._files) != paths
        for gone in set(self._files) - set(paths):
            self._forget(gone)
            del self._files[gone]
        new_chunks: list[pl.DataFrame] = []
        for path in paths:
            known = self._files.get(path)
            if known is None:
                known = self._files[path] = _File()
            new, read = self._read(path, known)
            changed = changed or read
            if new is not None:
                new_chunks.append(new)
        self._files = {path: self._files[path] for path in paths}
        changed = changed or self._shrank
        self._shrank = False
        if new_chunks:
            new = pl.concat(new_chunks)
            self._points = pl.concat([self._points, new], rechunk=False)
            if self._points.n_chunks() > MAX_CHUNKS:
                self._points = self._points.rechunk()
            self._last = update_last(self._last, new)
        states = [
            _state(known.reading.run, path)
            for path, known in self._files.items()
            if not known.unreadable
        ]
        if changed or states != self._states or self._current is None:
            self._states = states
            self._current = self._assemble()
            return self._current, True
        return self._current, False

    def _forget(self, path: Path) -> None:
        key = shown(path)
        self._points = self._points.filter(pl.col("run_id").cast(pl.String) != key)
        self._last = self._last.filter(pl.col("run_id") != key)

    def _read(self, path: Path, known: _File) -> tuple[pl.DataFrame | None, bool]:
        """(the new points, whether any record was read) of one file."""
        if known.unreadable:
            return None, False
        try:
            size = path.stat().st_size
            if size < known.offset:
                warn(path, f"shrank below {known.offset} bytes; read again")
                self._forget(path)
                known = self._files[path] = _File()
                self._shrank = True
            if size == known.offset:
                return None, False
            data = read_bytes(path, offset=known.offset)
        except OSError as error:
            warn(path, f"not read ({error})")
            return None, False
        self.bytes_read += len(data)
        start = 0
        if known.offset == 0:
            if len(data) < HEADER_SIZE:
                return None, False  # the header is being written
            if data[:4] != HEADER:
                warn(path, "not read (not a W&B run file (no ':W&B' header))")
                known.unreadable = True
                return None, True
            start = HEADER_SIZE
        records, problems, end = scan_records(data, start, base=known.offset, follow=True)
        for problem in problems:
            if "truncated" not in problem:  # a record being written: read next time
                warn(path, problem)
        known.offset += end
        if not records:
            return None, False
        apply_records(records, known.reading, path, known.records)
        known.records += len(records)
        run = known.reading.run
        if len(run.values) == known.emitted:
            return None, True
        chunk = run_chunk(shown(path), run, known.emitted).with_columns(
            pl.col("run_id").cast(pl.Categorical)
        )
        known.emitted = len(run.values)
        return chunk, True

    def _assemble(self) -> Runs:
        readable = [(path, known) for path, known in self._files.items() if not known.unreadable]
        runs = [(path, settled(known.reading, path)) for path, known in readable]
        records: list[RunRecord] = []
        ids: dict[str, str] = {}
        for (path, run), run_id in zip(runs, run_ids(runs), strict=True):
            ids[shown(path)] = run_id
            records.append(run_record(path, run, run_id, self.project, self.group, self.job_type))
        last = self._last.filter(pl.col("run_id").is_in(list(ids))).with_columns(
            pl.col("run_id").replace_strict(ids, return_dtype=pl.String)
        )
        runs_frame = assemble(records, [last_chunk(last, ids.values())]).runs
        mapping = pl.DataFrame(
            {"run_id": list(ids), "id": list(ids.values())},
            schema={"run_id": pl.Categorical, "id": pl.String},
        )
        history = (
            self._points.lazy()
            .join(mapping.lazy(), on="run_id", how="inner", maintain_order="left")
            .drop("run_id")
            .rename({"id": "run_id"})
            .select([pl.col(column).cast(dtype) for column, dtype in HISTORY_SCHEMA.items()])
        )
        return Runs(runs_frame, history, validate=False)
