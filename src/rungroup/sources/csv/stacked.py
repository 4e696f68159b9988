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

__all__ = ["BATCH_BYTES", "Stacked", "read_stacked"]

#: Text parsed at a time (a batch holds one file at least).
BATCH_BYTES = 256 * 1024 * 1024


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


def _read_file(path: str, size: int, head: bytearray, body: memoryview) -> int | None:
    """Read a regular file of `size` bytes (its first `len(head)` bytes into `head`, the rest
    into `body`); the body's length, or None when it is not a regular file of that size (a
    FIFO is opened without blocking and never read) or changed while read."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_size != size or size < len(head):
            return None
        length = size - len(head)
        done = os.readv(descriptor, [head, body[:length]])
        while done < size:  # a short read (rare for regular files): go on into the body
            if done < len(head):
                return None
            got = os.readv(descriptor, [body[done - len(head) : length]])
            if got == 0:
                return None  # shrank
            done += got
        if os.read(descriptor, 1):
            return None  # grew while read
        return length
    except OSError:
        return None
    finally:
        os.close(descriptor)


def _buffer(paths: list[Path], sizes: list[int]) -> tuple[io.BytesIO, list[int], bytes] | None:
    """(the first file, then the bodies of the others, each ending in a line break; the end
    of each file's rows in it; the shared header line), or None when a file is not plain or
    the headers differ. One file is open at a time."""
    if not sizes[0]:
        return None
    # A buffer the BytesIO owns (read_csv then takes it without a copy); one extra byte a
    # file: a last line without its line break gets one.
    buffer = io.BytesIO()
    buffer.seek(sum(sizes) + len(sizes) - 1)
    buffer.write(b"\0")
    view = buffer.getbuffer()
    try:
        # The first file whole: its first line is the header every other file must start with.
        used = _read_file(str(paths[0]), sizes[0], bytearray(), view)
        if used is None:
            return None
        first, newline, _ = bytes(view[: min(used, 1 << 20)]).partition(b"\n")
        header = first + newline
        if not newline or not header.strip() or b'"' in header:
            return None  # no line break in the first MiB, a blank header, a quoted name
        if b"\r" in header.removesuffix(b"\n").removesuffix(b"\r"):
            return None  # a lone carriage return in the header
        head = bytearray(len(header))
        ends: list[int] = []
        for index, (path, size) in enumerate(zip(paths, sizes, strict=True)):
            if index == 0:
                start = len(header)
            else:
                start = used
                length = _read_file(str(path), size, head, view[used:])
                if length is None or head != header:
                    return None
                used += length
            if used > start and view[used - 1] != 0x0A:
                view[used] = 0x0A
                used += 1
            ends.append(used)
    finally:
        view.release()
    buffer.truncate(used)
    buffer.seek(0)
    return buffer, ends, header


def read_stacked(paths: list[Path]) -> Stacked | None:
    """All `paths` (CSV files) as one `Stacked` table, or None (see the module's doc).

    The files are parsed in batches of about `BATCH_BYTES` of text, so that the text of a
    large tree is never all in memory at once (it takes about 2.5 times its values' room).
    """
    if len(paths) < 2:
        return None
    try:
        sizes = [path.stat().st_size for path in paths]
    except OSError:
        return None
    frames: list[pl.DataFrame] = []
    counts: list[np.ndarray] = []
    header = None
    begin = 0
    while begin < len(paths):
        end = begin + 1
        total = sizes[begin]
        while end < len(paths) and total + sizes[end] <= BATCH_BYTES:
            total += sizes[end]
            end += 1
        parsed = _parse(paths[begin:end], sizes[begin:end])
        if parsed is None or (header is not None and parsed[2] != header):
            return None
        frames.append(parsed[0])
        counts.append(parsed[1])
        header = parsed[2]
        begin = end
    starts = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
    frame = frames[0] if len(frames) == 1 else pl.concat(frames, rechunk=False)
    return Stacked([str(p) for p in paths], frame, starts)


def _parse(paths: list[Path], sizes: list[int]) -> tuple[pl.DataFrame, np.ndarray, bytes] | None:
    """(the rows of `paths` in one frame, each file's row count, their header), or None."""
    read = _buffer(paths, sizes)
    if read is None:
        return None
    buffer, ends, header = read
    # A quote may hold a line break (a row spanning lines), and Polars may end a line at a
    # lone carriage return: either makes line counts differ from row counts. Without them
    # every line break ends exactly one row (a blank line is a row of nulls), so a file's
    # rows are its line breaks; nothing can make Polars see more rows than line breaks, so
    # equal totals prove every file's count. Looked at file by file: small temporaries that
    # stay in the CPU's cache (one pass over the whole text costs 3 to 10 times more).
    bounds = [len(header), *ends]
    counts = np.zeros(len(ends), dtype=np.int64)
    view = buffer.getbuffer()
    try:
        codes = np.frombuffer(view, dtype=np.uint8)
        for index in range(len(ends)):
            part = codes[bounds[index] : bounds[index + 1]]
            if (part == 0x22).any():
                return None
            returns = np.flatnonzero(part == 0x0D)
            if returns.size and (returns[-1] + 1 == part.size or (part[returns + 1] != 0x0A).any()):
                return None
            counts[index] = np.count_nonzero(part == 0x0A)
        del codes, part, returns
    finally:
        view.release()
    try:
        names = pl.read_csv(header, n_rows=0).columns
        frame = pl.read_csv(
            buffer,
            infer_schema=False,
            schema_overrides=dict.fromkeys(names, pl.Float64),
            raise_if_empty=False,
        )
    except (pl.exceptions.PolarsError, UnicodeError):
        return None  # text in a column, a ragged row, bytes that are not UTF-8, ...
    if frame.height != int(counts.sum()) or frame.columns != names:
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
    return frame, counts, header
