"""Many CSV files with one header read as one table (issue #14, fast first reads).

A tree written by one program (`progress.csv` per seed, the same columns everywhere) is read
into one buffer, the header kept once, and parsed by a single `pl.read_csv`; the rows of each
file are then known from its line count. This reads a tree several times faster than one
Polars scan per file and lets `tree.load_csv` check and reshape all files at once.

`read_stacked` returns None whenever it cannot prove that the table holds exactly what
reading the files one by one holds (another header, a quote that may hide a line break, a
lone carriage return, text in a column, a file changing size, ...); the caller then reads
the files the general way, so an unusual tree is slower, never different.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["Stacked", "read_stacked"]


@dataclass(frozen=True)
class Stacked:
    """Rows of several files in one frame: file `i` holds rows `starts[i]:starts[i + 1]`."""

    paths: list[str]
    frame: pl.DataFrame  # the header's columns, all Float64
    starts: np.ndarray  # int64, len(paths) + 1

    def rows(self, position: int) -> pl.DataFrame:
        """The rows of one file (a zero-copy slice)."""
        start = int(self.starts[position])
        return self.frame.slice(start, int(self.starts[position + 1]) - start)

    def file_index(self) -> pl.Series:
        """The position of each row's file, a column as long as the frame."""
        counts = np.diff(self.starts)
        return pl.Series(np.repeat(np.arange(len(self.paths), dtype=np.uint32), counts))


def _open_regular(path: str) -> tuple[int, int] | None:
    """(descriptor, size) of a regular file, or None (a FIFO is opened without blocking)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
    except OSError:
        os.close(descriptor)
        return None
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        return None
    return descriptor, status.st_size


def _read_into(descriptor: int, view: memoryview) -> bool:
    """Fill `view` from the file; False when the file ended first (it shrank)."""
    done = 0
    while done < len(view):
        got = os.readv(descriptor, [view[done:]])
        if got == 0:
            return False
        done += got
    return True


def _buffer(paths: list[Path]) -> tuple[bytearray, list[int], bytes] | None:
    """(bodies of all files one after the other, each ending in a line break; the end of
    each body in it; the shared header line), or None when a file is not plain or the
    headers differ."""
    opened: list[tuple[int, int]] = []
    try:
        for path in paths:
            found = _open_regular(str(path))
            if found is None:
                return None
            opened.append(found)
        # One extra byte a file: a last line without its line break gets one.
        buffer = bytearray(sum(size for _, size in opened) + len(opened))
        view = memoryview(buffer)
        ends: list[int] = []
        header = b""
        used = 0
        for index, (descriptor, size) in enumerate(opened):
            if index == 0:
                if size == 0 or not _read_into(descriptor, view[:size]):
                    return None
                cut = buffer.find(b"\n", 0, size)
                if cut < 0 or not buffer[:cut].strip():
                    return None
                header = bytes(buffer[: cut + 1])
                used = size
            else:
                if size < len(header):
                    return None
                head = os.read(descriptor, len(header))
                if head != header:
                    return None
                length = size - len(header)
                if not _read_into(descriptor, view[used : used + length]):
                    return None
                used += length
            if os.read(descriptor, 1):
                return None  # grew while read: read it the general way
            if used and buffer[used - 1] != 0x0A and used > (ends[-1] if ends else len(header)):
                buffer[used] = 0x0A
                used += 1
            ends.append(used)
        view.release()
        del buffer[used:]
        return buffer, ends, header
    finally:
        for descriptor, _ in opened:
            os.close(descriptor)


def read_stacked(paths: list[Path]) -> Stacked | None:
    """All `paths` (CSV files) as one `Stacked` table, or None (see the module's doc)."""
    if len(paths) < 2:
        return None
    read = _buffer(paths)
    if read is None:
        return None
    buffer, ends, header = read
    # A quote may hold a line break (a row spanning lines), and Polars may end a line at a
    # lone carriage return: either makes line counts differ from row counts.
    if buffer.find(b'"') >= 0:
        return None
    codes = np.frombuffer(buffer, dtype=np.uint8)
    returns = np.flatnonzero(codes == 0x0D)
    if returns.size and (returns[-1] + 1 == codes.size or (codes[returns + 1] != 0x0A).any()):
        return None
    # Without quotes and lone CRs every line break ends exactly one row (a blank line is a
    # row of nulls), so a file's rows are its line breaks; nothing can make Polars see more
    # rows than line breaks, so equal totals prove every file's count.
    breaks = np.flatnonzero(codes == 0x0A)
    before = np.searchsorted(breaks, np.array([len(header), *ends], dtype=np.int64))
    starts = (before - before[0]).astype(np.int64)
    try:
        names = pl.read_csv(header, n_rows=0).columns
        frame = pl.read_csv(
            io.BytesIO(buffer),
            infer_schema=False,
            schema_overrides=dict.fromkeys(names, pl.Float64),
            raise_if_empty=False,
        )
    except (pl.exceptions.PolarsError, UnicodeError):
        return None  # text in a column, a ragged row, bytes that are not UTF-8, ...
    if frame.height != int(starts[-1]) or frame.columns != names:
        return None
    if any(dtype != pl.Float64 for dtype in frame.dtypes):
        return None
    # Polars reads an integer column "-0" as 0 (and casts it to 0.0) but a float column's
    # "-0" as -0.0; whether the general reader saw integers depends on its type inference,
    # so a tree holding a negative zero anywhere is left to it.
    for column in frame.get_columns():
        values = column.to_numpy()
        if np.signbit(values[values == 0]).any():
            return None
    return Stacked([str(p) for p in paths], frame, starts)
