"""A loaded history held compactly, read as the documented long `LazyFrame` on demand.

A logged row (one `log()` call) puts several metrics at one (step, wall time). The long frame
repeats that step and time for every metric and names run and metric per point: 32 to 40
bytes a point. Held here instead, per point its value (8 bytes), and per row of points that
share step and time the step and the time (16 bytes shared by the row). Most runs log the
same metrics in the same order in every row: such a *regular* run keeps that sequence of
metric codes once (9.6 bytes a point where ten metrics share a row). Any other run keeps a
metric code per point (1, 2 or 4 bytes, the smallest that fits the number of metrics) and
each row's length (4 bytes a row): 11 bytes a point for ten metrics a row.

`CompactHistory.lazy()` is a Polars IO source: a query builds only the columns it selects,
for only the points its filter keeps, in batches of runs, so aggregating one metric of ten
never holds the other nine in the long form. The rows come out in the order they were added
(a run's points in logged order, runs in the order added), as the long frame held them.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
from polars.io.plugins import register_io_source

from rungroup.runs import HISTORY_SCHEMA

#: Points per batch handed to Polars: large enough to amortise the per-batch work, small
#: enough that a batch of all six columns (40 bytes a point) stays near 80 MB.
BATCH_POINTS = 2_000_000


def allocate(size: int, dtype: Any) -> np.ndarray:
    """An uninitialised array in its own anonymous memory map.

    numpy asks the kernel for transparent huge pages on big arrays; where the kernel
    compacts memory on a fault to provide them, the first touch of a gigabyte costs seconds
    (measured: 2.6 s against 0.7 s with ordinary pages). A plain mapping avoids that.
    """
    nbytes = size * np.dtype(dtype).itemsize
    if nbytes < 1 << 20:
        return np.empty(size, dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype)


class _Growing:
    """A preallocated array that grows by half again when full."""

    def __init__(self, capacity: int, dtype: Any) -> None:
        self.array = allocate(max(capacity, 16), dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        stop = self.size + values.shape[0]
        if stop > self.array.shape[0]:
            self.reserve(stop)
        self.array[self.size : stop] = values
        self.size = stop

    def reserve(self, needed: int, dtype: Any = None) -> None:
        dtype = self.array.dtype if dtype is None else dtype
        capacity = max(needed, int(self.array.shape[0] * 1.5))
        new = allocate(capacity, dtype)
        new[: self.size] = self.array[: self.size]
        self.array = new

    def view(self) -> np.ndarray:
        return self.array[: self.size]


def _code_dtype(count: int) -> Any:
    if count <= 1 << 8:
        return np.uint8
    if count <= 1 << 16:
        return np.uint16
    return np.uint32


class CompactBuilder:
    """Collects runs' points run by run (`add`), then makes the `CompactHistory`."""

    def __init__(self, points: int = 0) -> None:
        self._values = _Growing(points, np.float64)
        rows = max(points // 4, 16)
        self._row_steps = _Growing(rows, np.int64)
        self._row_times = _Growing(rows, np.float64)
        # irregular runs: a code per point and a length per row; regular runs: their pattern
        self._codes = _Growing(0, np.uint8)
        self._row_lengths = _Growing(0, np.uint32)
        self._patterns = _Growing(0, np.uint8)
        self._runs: list[tuple[int, int, int]] = []  # (points, rows, pattern width or 0)
        self._names: dict[str, int] = {}
        self._code_counts = np.zeros(0, np.int64)

    def code(self, name: str) -> int:
        """The metric's code, given on first sight."""
        code = self._names.setdefault(name, len(self._names))
        dtype = _code_dtype(len(self._names))
        if np.dtype(dtype).itemsize > self._codes.array.itemsize:
            self._codes.reserve(self._codes.array.shape[0], dtype)
            self._patterns.reserve(self._patterns.array.shape[0], dtype)
        return code

    def add(
        self, steps: np.ndarray, times: np.ndarray, codes: np.ndarray, values: np.ndarray
    ) -> None:
        """One run's points, in logged order; `codes` from `code()`."""
        count = int(values.shape[0])
        if not count:
            self._runs.append((0, 0, 0))
            return
        # A new row where the step or the time changes; times compared by their bits, so
        # that -0.0 and 0.0 are kept exactly as logged.
        bits = times.view(np.int64)
        starts = np.flatnonzero((steps[1:] != steps[:-1]) | (bits[1:] != bits[:-1])) + 1
        firsts = np.concatenate(([0], starts))
        lengths = np.diff(np.concatenate((firsts, [count])))
        width = int(lengths[0])
        regular = bool((lengths == width).all()) and bool(
            (codes.reshape(-1, width) == codes[:width]).all()
        )
        self._row_steps.extend(steps[firsts])
        self._row_times.extend(times[firsts])
        self._values.extend(values)
        if regular:
            self._patterns.extend(codes[:width].astype(self._patterns.array.dtype))
            counts = np.bincount(codes[:width]) * firsts.shape[0]
        else:
            self._codes.extend(codes.astype(self._codes.array.dtype))
            self._row_lengths.extend(lengths.astype(np.uint32))
            counts = np.bincount(codes)
        if counts.shape[0] > self._code_counts.shape[0]:
            self._code_counts = np.pad(
                self._code_counts, (0, counts.shape[0] - self._code_counts.shape[0])
            )
        self._code_counts[: counts.shape[0]] += counts
        self._runs.append((count, int(firsts.shape[0]), width if regular else 0))

    def build(self, run_ids: list[str], starts: list[float]) -> CompactHistory:
        return CompactHistory(
            run_ids=run_ids,
            starts=starts,
            metrics=list(self._names),
            code_counts=self._code_counts,
            runs=np.asarray(self._runs, np.int64).reshape(-1, 3),
            row_steps=self._row_steps.view(),
            row_times=self._row_times.view(),
            values=self._values.view(),
            codes=self._codes.view(),
            row_lengths=self._row_lengths.view(),
            patterns=self._patterns.view(),
        )


def _offsets(sizes: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)


class CompactHistory:
    """Runs' points as rows of shared (step, time) and a value per point; the metric of each
    point from its run's pattern (regular runs) or a code per point."""

    def __init__(
        self,
        *,
        run_ids: list[str],
        starts: list[float],
        metrics: list[str],
        code_counts: np.ndarray,
        runs: np.ndarray,
        row_steps: np.ndarray,
        row_times: np.ndarray,
        values: np.ndarray,
        codes: np.ndarray,
        row_lengths: np.ndarray,
        patterns: np.ndarray,
    ) -> None:
        if len(run_ids) != runs.shape[0]:
            raise ValueError(f"{len(run_ids)} run ids for {runs.shape[0]} runs' points")
        self.run_ids = run_ids
        self.metrics = metrics
        self._code_counts = code_counts
        #: the names of the metrics with at least one point, sorted (`Runs.metrics`)
        self.logged = sorted(
            name for name, count in zip(metrics, code_counts.tolist(), strict=False) if count
        )
        self._start_us = np.round(np.asarray(starts, np.float64) * 1e6).astype(np.int64)
        points, rows, widths = runs[:, 0], runs[:, 1], runs[:, 2]
        irregular = widths == 0
        self._widths = widths
        self._point_offsets = _offsets(points)
        self._row_offsets = _offsets(rows)
        self._code_offsets = _offsets(np.where(irregular, points, 0))
        self._length_offsets = _offsets(np.where(irregular, rows, 0))
        self._pattern_offsets = _offsets(widths)
        self._row_steps = row_steps
        self._row_times = row_times
        self._values = values
        self._codes = codes
        self._row_lengths = row_lengths
        self._patterns = patterns

    def __len__(self) -> int:
        return int(self._point_offsets[-1])

    @property
    def nbytes(self) -> int:
        """The bytes the points hold (the arrays, not the Python objects around them)."""
        arrays = (
            self._row_steps,
            self._row_times,
            self._values,
            self._codes,
            self._row_lengths,
            self._patterns,
        )
        return sum(a.nbytes for a in arrays)

    def lazy(self) -> pl.LazyFrame:
        """The long history (`HISTORY_SCHEMA`), built batch by batch when a query runs."""
        return register_io_source(
            self._batches,
            schema=HISTORY_SCHEMA,
            is_pure=True,
            explain_name="rungroup compact history",
        )

    def _run_batches(self) -> Iterator[tuple[int, int]]:
        """[first, last) run ranges of about `BATCH_POINTS` points (at least one run)."""
        first, total = 0, len(self.run_ids)
        while first < total:
            limit = self._point_offsets[first] + BATCH_POINTS
            last = int(np.searchsorted(self._point_offsets, limit, side="right")) - 1
            last = min(max(last, first + 1), total)
            yield first, last
            first = last

    def _kept_codes(self, predicate: pl.Expr | None) -> np.ndarray | None:
        """A table code -> kept, when `predicate` reads the metric alone (the engine's
        `metric.is_in(...)`): points of other metrics are then never built."""
        if predicate is None or predicate.meta.root_names() != ["metric"]:
            return None
        names = pl.DataFrame({"metric": pl.Series(self.metrics, dtype=pl.Categorical)})
        kept = names.select(predicate.fill_null(False)).to_series()
        return kept.to_numpy().astype(bool)

    def _batches(
        self,
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        columns = list(HISTORY_SCHEMA) if with_columns is None else with_columns
        kept_codes = self._kept_codes(predicate)
        if kept_codes is not None and n_rows is None:
            # Few points of each batch are kept: filled into one array per column, so that the
            # result is one chunk per column (numpy reads it without a copy) and no batch of
            # the other metrics' points is ever made.
            yield self._frame(self._kept_arrays(columns, kept_codes), columns)
            return
        remaining = n_rows
        for first, last in self._run_batches():
            arrays = self._arrays(first, last, columns, kept_codes)
            batch = self._frame(arrays, columns)
            if predicate is not None and kept_codes is None:
                batch = batch.filter(predicate)
            if remaining is not None:
                batch = batch.head(remaining)
                remaining -= batch.height
            if batch.height:
                yield batch
            if remaining is not None and remaining <= 0:
                return

    def _kept_arrays(self, columns: list[str], kept_codes: np.ndarray) -> dict[str, np.ndarray]:
        """`_arrays` of every run, for the metrics `kept_codes` keeps, in one array each."""
        total = int(self._code_counts[kept_codes[: self._code_counts.shape[0]]].sum())
        filled: dict[str, np.ndarray] = {}
        position = 0
        for run in range(len(self.run_ids)):
            arrays = self._run_arrays(run, columns, kept_codes)
            size = arrays["value"].shape[0]
            for name, array in arrays.items():
                if name not in filled:
                    filled[name] = allocate(total, array.dtype)
                filled[name][position : position + size] = array
            position += size
        return {name: array[:position] for name, array in filled.items()}

    def _arrays(
        self, first: int, last: int, columns: list[str], kept_codes: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """`_run_arrays` of runs [first, last), concatenated."""
        parts = [self._run_arrays(run, columns, kept_codes) for run in range(first, last)]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def _run_arrays(
        self, run: int, columns: list[str], kept_codes: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """One run's points (only those whose metric `kept_codes` keeps, when given) as
        arrays: ``value``, ``run`` (its position) and ``code`` (metric codes) when asked
        for, and the numeric columns among `columns`."""
        begin, end = self._point_offsets[run], self._point_offsets[run + 1]
        row_begin, row_end = self._row_offsets[run], self._row_offsets[run + 1]
        values = self._values[begin:end]
        rows = int(row_end - row_begin)
        width = int(self._widths[run])
        if width:
            pattern = self._patterns[self._pattern_offsets[run] : self._pattern_offsets[run + 1]]
            kept = np.arange(width) if kept_codes is None else np.flatnonzero(kept_codes[pattern])
            if kept.shape[0] != width:
                values = values.reshape(rows, width)[:, kept].ravel()
            codes = np.tile(pattern[kept], rows)
            row_of = np.repeat(np.arange(rows), kept.shape[0])
        else:
            codes = self._codes[self._code_offsets[run] : self._code_offsets[run + 1]]
            lengths = self._row_lengths[self._length_offsets[run] : self._length_offsets[run + 1]]
            if kept_codes is None:
                row_of = np.repeat(np.arange(rows), lengths)
            else:
                positions = np.flatnonzero(kept_codes[codes])
                row_ends = np.cumsum(lengths, dtype=np.int64)
                row_of = np.searchsorted(row_ends, positions, side="right")
                codes, values = codes[positions], values[positions]
        arrays: dict[str, np.ndarray] = {"value": values}
        if "run_id" in columns or "timestamp" in columns:
            arrays["run"] = np.full(values.shape[0], run, np.uint32)
        if "metric" in columns:
            arrays["code"] = codes
        if "step" in columns:
            arrays["step"] = self._row_steps[row_begin:row_end][row_of]
        if "time" in columns or "timestamp" in columns:
            arrays["time"] = self._row_times[row_begin:row_end][row_of]
        return arrays

    def _frame(self, arrays: dict[str, np.ndarray], columns: list[str]) -> pl.DataFrame:
        if not arrays:  # no runs
            return pl.DataFrame(schema={name: HISTORY_SCHEMA[name] for name in columns})
        series: list[pl.Series] = []
        for name in columns:
            if name == "run_id":
                ids = pl.Series("run_id", self.run_ids, dtype=pl.Categorical)
                series.append(ids.gather(arrays["run"]))
            elif name == "metric":
                names = pl.Series("metric", self.metrics, dtype=pl.Categorical)
                series.append(names.gather(arrays["code"]))
            elif name == "timestamp":
                # as `sources.store.reader.with_timestamp` derives it: start + round(time in µs)
                offsets = (pl.Series(arrays["time"]) * 1e6).round().cast(pl.Int64)
                micros = pl.Series(self._start_us[arrays["run"]]) + offsets
                series.append(micros.cast(pl.Datetime("us", "UTC")).alias("timestamp"))
            else:
                series.append(pl.Series(name, arrays[name]))
        return pl.DataFrame(series)
