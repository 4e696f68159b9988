"""Event records decoded into a run's scalar points: the common layout in numpy
(`rungroup.sources.tensorboard.layout`), every other record by the general protobuf walk
(`Event`: wall_time = 1, step = 2, summary = 5; `Summary` `Value`: tag = 1, simple_value = 2,
tensor = 8, metadata = 9), and the hparams plugin's session info into the run's config, group
and state. Files are decoded in batches, framed and checked as one buffer where nothing in
them is unusual."""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from rungroup.runs import LoadWarning
from rungroup.sources.castagnoli import frames_intact
from rungroup.sources.protoreader import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    signed,
    spans,
    text,
    to_double,
    to_float,
)
from rungroup.sources.runrecords import is_time, warn
from rungroup.sources.tensorboard.layout import simple_values
from rungroup.sources.tensorboard.proto import Event, HParamsPluginData, Summary, Value
from rungroup.sources.tensorboard.records import Records, frame_heads, frame_records, stored
from rungroup.sources.tensorboard.values import expect, map_entry, plugin_of, tensor_scalar

#: hparams plugin session end status -> run state.
HPARAMS_STATUS = {1: "finished", 2: "failed", 3: "running"}


@dataclass
class Scalars:
    """The scalar points of one run, in columns."""

    blocks: list[pl.DataFrame] = field(default_factory=list)  # metric, step, wall, value
    first_wall: float | None = None
    last_wall: float | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    state: str | None = None


class Rows(NamedTuple):
    """Points in columns, as the general walk finds them."""

    tags: list[str]
    steps: list[int]
    walls: list[float]
    values: list[float]

    def frame(self, categorical: bool = False) -> pl.DataFrame:
        metric = pl.Categorical() if categorical else pl.String()
        return pl.DataFrame(
            {"metric": self.tags, "step": self.steps, "wall": self.walls, "value": self.values},
            schema={"metric": metric, "step": pl.Int64, "wall": pl.Float64, "value": pl.Float64},
        )


def _hparams(data: bytes, a: int, b: int, into: Scalars) -> None:
    """HParamsPluginData: session_start_info = 3 (hparams = 1, group_name = 4), end = 4."""
    for number, wire, x, y in spans(data, a, b):
        if number == HParamsPluginData.SESSION_START_INFO and wire == LEN:
            for snum, swire, sa, sb in spans(data, x, y):
                if snum == HParamsPluginData.START_HPARAMS and swire == LEN:
                    key, value = map_entry(data, sa, sb)
                    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
                        value = int(value)
                    into.hparams[key] = value
                elif snum == HParamsPluginData.START_GROUP_NAME and swire == LEN:
                    into.group = text(data, sa, sb) or None
        elif number == HParamsPluginData.SESSION_END_INFO and wire == LEN:
            for enum, ewire, ea, _ in spans(data, x, y):
                if enum == HParamsPluginData.END_STATUS and ewire == VARINT:
                    into.state = HPARAMS_STATUS.get(ea, into.state)


def decode_events(
    data: bytes,
    path: Path,
    prefix: str,
    into: Scalars,
    check_crc: bool,
    plugins: dict[str, str],
) -> None:
    """Decode the records of `data` (whole records of one event file) into `into`.

    `plugins` (tag -> plugin name, written only with a tag's first value) carries over from
    the earlier records of the same file."""
    records = frame_records(data, path, check_crc)
    untimed: list[tuple[int, float]] = []  # (record, wall_time) of wall times that are not
    fresh = len(into.blocks)
    done, points = simple_values(data, records, prefix, untimed)
    if points is not None:
        into.blocks.append(points)
    rest = np.flatnonzero(~done)
    decode_rest(data, path, prefix, into, plugins, records, rest, 0, untimed, fresh)


def decode_rest(
    data: bytes,
    path: Path,
    prefix: str,
    into: Scalars,
    plugins: dict[str, str],
    records: Records,
    rest: np.ndarray[Any, Any],
    base: int,
    untimed: list[tuple[int, float]],
    fresh: int,
    rows: Rows | None = None,
) -> int:
    """Decode the records numbered `rest` (those `simple_values` did not take) with the
    general protobuf walk, then update the run's first and last wall times from its blocks
    from number `fresh` on (the earlier ones are counted already). `base` is the number of
    the file's first record in `records` (several files decoded together): warnings number
    the records within the file. The points go to a new block of `into`, or are added to
    `rows` (the columns of several files' blocks, built at once); returns their number."""
    tags, steps, walls, values = rows if rows is not None else Rows([], [], [], [])
    had = len(tags)
    first = into.first_wall
    last = into.last_wall
    starts, ends = records
    for index in rest.tolist():
        start, end = int(starts[index]), int(ends[index])
        try:
            wall = None
            step = 0
            summary: tuple[int, int] | None = None
            for number, wire, x, y in spans(data, start, end):
                if number == Event.WALL_TIME and wire == FIXED64:
                    wall = to_double(x)
                    if not is_time(wall):
                        untimed.append((index, wall))
                        wall = None
                elif number == Event.STEP and wire == VARINT:
                    step = signed(x)
                elif number == Event.SUMMARY and wire == LEN:
                    summary = (x, y)
            if wall is not None:
                first = wall if first is None or wall < first else first
                last = wall if last is None or wall > last else last
            if summary is None:
                continue
            for number, wire, va, vb in spans(data, summary[0], summary[1]):
                if number != Summary.VALUE or wire != LEN:
                    continue
                tag = ""
                value: float | None = None
                tensor: tuple[int, int] | None = None
                meta: tuple[int, int] | None = None
                for fnum, fwire, fa, fb in spans(data, va, vb):
                    if fnum == Value.TAG and fwire == LEN:
                        tag = text(data, fa, fb)
                    elif fnum == Value.SIMPLE_VALUE:
                        expect(fwire, FIXED32, "simple_value")
                        value = to_float(fa) if fwire == FIXED32 else None
                    elif fnum == Value.TENSOR and fwire == LEN:
                        tensor = (fa, fb)
                    elif fnum == Value.METADATA and fwire == LEN:
                        meta = (fa, fb)
                if meta is not None:
                    plugin, content = plugin_of(data, *meta)
                    if plugin:
                        plugins[tag] = plugin
                    if plugin == "hparams" and content is not None:
                        _hparams(data, content[0], content[1], into)
                        continue
                if value is None and tensor is not None:
                    if plugins.get(tag, "scalars") != "scalars":
                        continue
                    value = tensor_scalar(data, *tensor)
                if value is None:
                    continue
                tags.append(prefix + tag)
                steps.append(step)
                walls.append(wall if wall is not None else float("nan"))
                values.append(value)
        except (ValueError, OverflowError, IndexError, struct.error) as error:
            # DecodeError and UnicodeDecodeError are ValueErrors
            warn(path, f"record {index - base} is not a readable event ({error}); skipped")
    if untimed:
        index, wall = min(untimed)
        warn(
            path,
            f"record {index - base}: wall_time {wall!r} is not a time; the points of "
            f"{len(untimed)} record(s) have no time or timestamp",
        )
    if tags and rows is None:
        into.blocks.append(Rows(tags, steps, walls, values).frame())
    for block in into.blocks[fresh:]:
        if block.height:
            low, high = block["wall"].min(), block["wall"].max()
            if isinstance(low, float) and low == low:
                first = low if first is None or low < first else first
            if isinstance(high, float) and high == high:
                last = high if last is None or high > last else last
    into.first_wall = first
    into.last_wall = last
    return len(tags) - had


#: (the run's points, event file, metric prefix, the file's bytes) waiting to be decoded.
Pending = tuple[Scalars, Path, str, bytes]


#: Event files are decoded together up to this many bytes: numpy's cost per call, paid once
#: per file otherwise, is most of the time for files of a few thousand scalars. Larger
#: batches lose more to the CPU cache than they save (CPU time for 400 files of 5,000
#: scalars: 0.38 s at 4 MiB, 0.42 s at 1 MiB, 0.70 s at 16 MiB).
BATCH_BYTES = 4 << 20


def decode_files(batch: list[Pending], check_crc: bool) -> None:
    """Decode the files of `batch`, in order, into their runs' points."""
    if len(batch) > 1 and _decode_together(batch, check_crc):
        return
    for scalars, path, prefix, data in batch:
        decode_events(data, path, prefix, scalars, check_crc, {})


def _decode_together(batch: list[Pending], check_crc: bool) -> bool:
    """Frame, check and decode the files of `batch` as one buffer, giving each run what
    `decode_events` gives it file by file; False (and nothing done) when anything is
    unusual: damage, a truncated file, wall times that are not times. The per-file path then
    says what and where."""
    big = b"".join(item[3] for item in batch)
    buf = np.frombuffer(big, dtype=np.uint8)
    sizes = np.asarray([len(item[3]) for item in batch], dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoadWarning)
        try:
            heads = frame_heads(big, buf, batch[0][1])
        except LoadWarning:
            return False
    # Every file must start at a frame: then each file's frames are the ones its own walk
    # finds, and none runs over into the next file.
    opening = bounds[:-1][sizes > 0]
    found = np.searchsorted(heads, opening)
    if len(heads) == 0 or (found >= len(heads)).any() or (heads[found] != opening).any():
        return False
    lengths = stored(buf, heads, 8, np.uint64).astype(np.int64)
    if check_crc and not frames_intact(buf, heads, lengths):
        return False  # a damaged record, or no C CRC-32C: checked file by file
    starts = heads + 12
    records = (starts, starts + lengths)
    untimed: list[tuple[int, float]] = []
    # Categorical from the start: built from the few distinct tags, and what `assemble`
    # makes of the metric column anyway (5 M strings cost more to make and to cast).
    done, block = simple_values(big, records, "", untimed, categorical=True)
    if untimed:
        return False
    owner = np.searchsorted(bounds, starts, side="right") - 1
    first_record = np.searchsorted(owner, np.arange(len(batch) + 1))
    simple_rows = np.concatenate([[0], np.cumsum(np.bincount(owner[done], minlength=len(batch)))])
    rest = np.flatnonzero(~done)
    rest_cuts = np.searchsorted(owner[rest], np.arange(len(batch) + 1))
    if block is not None:  # each file's first and last wall time (all of them are times)
        walls = block["wall"].to_numpy()
        lowest = np.zeros(len(batch))
        highest = np.zeros(len(batch))
        holding = np.flatnonzero(np.diff(simple_rows) > 0)  # files with such rows
        lowest[holding] = np.minimum.reduceat(walls, simple_rows[holding])
        highest[holding] = np.maximum.reduceat(walls, simple_rows[holding])
    # The other records file by file (their points gathered into one frame), then each
    # file's blocks in the order `decode_events` gives them: its simple scalars, the others.
    general = Rows([], [], [], [])
    counts = [
        decode_rest(
            big,
            path,
            prefix,
            scalars,
            {},
            records,
            rest[rest_cuts[number] : rest_cuts[number + 1]],
            int(first_record[number]),
            [],
            len(scalars.blocks),
            general,
        )
        for number, (scalars, path, prefix, _) in enumerate(batch)
    ]
    others = general.frame(categorical=True) if general.tags else None
    taken = 0
    for number, (scalars, _, prefix, _) in enumerate(batch):
        low, high = int(simple_rows[number]), int(simple_rows[number + 1])
        if block is not None and high > low:
            part = block.slice(low, high - low)
            if prefix:
                part = part.with_columns(
                    (pl.lit(prefix) + pl.col("metric").cast(pl.String))
                    .cast(pl.Categorical)
                    .alias("metric")
                )
            scalars.blocks.append(part)
            first, last = float(lowest[number]), float(highest[number])
            if scalars.first_wall is None or first < scalars.first_wall:
                scalars.first_wall = first
            if scalars.last_wall is None or last > scalars.last_wall:
                scalars.last_wall = last
        if others is not None and counts[number]:
            scalars.blocks.append(others.slice(taken, counts[number]))
            taken += counts[number]
    return True
