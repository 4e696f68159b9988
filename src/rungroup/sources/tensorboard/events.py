"""TensorBoard event files (`events.out.tfevents.*`), read without TensorFlow or tensorboard.

An event file is a TFRecord file: each record is `uint64 length, uint32 masked_crc32c(length),
data, uint32 masked_crc32c(data)`, and `data` is an `Event` protobuf (wall_time = 1, step = 2,
summary = 5). A `Summary` holds `Value`s (tag = 1, simple_value = 2, tensor = 8,
metadata = 9). Scalars come either as `simple_value` (tensorboardX, torch.utils.tensorboard,
TF1) or as a one-element `TensorProto` under the "scalars" plugin (TF2's tf.summary.scalar,
torch with new_style=True). The hparams plugin's session start info fills `config.*`.

Each folder holding event files is a run. With a path template
(``"logs/{algo}/{env}/seed_{seed}"``) the matched folders are the runs, their fields go to
`config.*`, and event files in subfolders of a run (Keras' train/ and validation/) give
metrics named ``<subfolder>/<tag>``.
"""

from __future__ import annotations

import stat
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from rungroup.runs import LoadWarning, Runs
from rungroup.sources.castagnoli import frames_intact, masked_crc32c_many
from rungroup.sources.files import MAX_NESTING, read_bytes, walk
from rungroup.sources.protoreader import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    DecodeError,
    packed_doubles,
    packed_floats,
    packed_varints,
    signed,
    spans,
    text,
    to_double,
    to_float,
)
from rungroup.sources.runrecords import (
    MAX_SECONDS,
    MIN_SECONDS,
    RunRecord,
    Template,
    apply_fields,
    assemble,
    format_option,
    is_time,
    progress,
    shown,
    utc_from_seconds,
    warn,
)
from rungroup.sources.tensorboard.proto import (
    Event,
    HParamsPluginData,
    PluginData,
    StructValue,
    Summary,
    SummaryMetadata,
    TensorProto,
    TensorShapeProto,
    Value,
)

__all__ = ["is_tensorboard", "load_tensorboard"]

EVENT_GLOB = "events.out.tfevents.*"
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")
#: hparams plugin session end status -> run state.
HPARAMS_STATUS = {1: "finished", 2: "failed", 3: "running"}

# TensorProto dtypes that can hold a scalar metric: dtype -> (struct format, size).
_DTYPES: dict[int, tuple[str, int]] = {
    1: ("<f", 4),  # DT_FLOAT
    2: ("<d", 8),  # DT_DOUBLE
    3: ("<i", 4),  # DT_INT32
    4: ("<B", 1),  # DT_UINT8
    5: ("<h", 2),  # DT_INT16
    6: ("<b", 1),  # DT_INT8
    9: ("<q", 8),  # DT_INT64
    10: ("<?", 1),  # DT_BOOL
    17: ("<H", 2),  # DT_UINT16
    19: ("<e", 2),  # DT_HALF
    22: ("<I", 4),  # DT_UINT32
    23: ("<Q", 8),  # DT_UINT64
}


def is_tensorboard(source: Any) -> bool:
    """True for an event file, or a folder with event files within three levels."""
    try:
        path = Path(source)
        if path.is_file():
            return path.name.startswith("events.out.tfevents.")
        if not path.is_dir():
            return False
        for depth in range(4):
            pattern = "/".join(["*"] * depth + [EVENT_GLOB])
            if next(iter(path.glob(pattern)), None) is not None:
                return True
    except (OSError, TypeError):
        return False
    return False


@dataclass
class _Scalars:
    """The scalar points of one run, in columns."""

    blocks: list[pl.DataFrame] = field(default_factory=list)  # metric, step, wall, value
    first_wall: float | None = None
    last_wall: float | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    state: str | None = None


_LENGTH = struct.Struct("<Q")

Records = tuple["np.ndarray[Any, np.dtype[np.int64]]", "np.ndarray[Any, np.dtype[np.int64]]"]


def _frame_records(data: bytes, path: Path, check_crc: bool) -> Records:
    """(starts, ends) of the records' data, verified; a truncated or corrupt length field
    ends the file there, a record whose data fails its checksum is left out."""
    buf = np.frombuffer(data, dtype=np.uint8)
    heads = _frame_heads(data, buf, path)
    start_arr = heads + 12
    if len(heads) == 0:
        return start_arr, start_arr.copy()
    lengths = _stored(buf, heads, 8, np.uint64).astype(np.int64)
    end_arr = start_arr + lengths
    if not check_crc or frames_intact(buf, heads, lengths):
        return start_arr, end_arr
    count = len(heads)
    stored_len = _stored(buf, start_arr - 4, 4, np.uint32)
    length_ok = masked_crc32c_many(buf, heads, np.full(count, 8)) == stored_len
    if not length_ok.all():
        count = int(np.argmin(length_ok))
        warn(path, f"record {count}: length checksum mismatch (corrupt file); read up to it")
    stored_data = _stored(buf, end_arr[:count], 4, np.uint32)
    data_ok = masked_crc32c_many(buf, start_arr[:count], lengths[:count]) == stored_data
    bad = np.flatnonzero(~data_ok)
    for index in bad[:3]:
        warn(path, f"record {int(index)}: data checksum mismatch; record skipped")
    if len(bad) > 3:
        warn(path, f"{len(bad) - 3} more records with a data checksum mismatch skipped")
    return start_arr[:count][data_ok], end_arr[:count][data_ok]


#: The first data byte of an event as every writer lays it out: wall_time's key.
_FIRST_KEY = 0x09


def _frame_heads(
    data: bytes, buf: np.ndarray[Any, np.dtype[np.uint8]], path: Path
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Offsets of the frames of the whole records from the file's start, walking the length
    fields (``uint64 length, uint32 crc, data, uint32 crc``); a truncated tail is warned
    about and left out.

    The walk is sequential, but most of it needs no Python step: offsets that look like a
    frame (the length's five high bytes zero, wall_time's key after the header) are found in
    one numpy pass, and a stretch of them where each frame ends exactly where the next
    candidate starts is taken at once: starting from a real frame, each of them is the next
    real frame. Where that breaks (a record of another layout, a candidate inside a record's
    bytes) one frame is walked in Python as before and the stretches resume."""
    size = len(data)
    heads: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    count = 0
    candidates, after, stretch_end = _candidate_frames(buf)
    number = len(candidates)
    unpack = _LENGTH.unpack_from
    pos = 0
    while pos + 12 <= size:
        k = int(np.searchsorted(candidates, pos)) if number else 0
        if k < number and candidates[k] == pos:
            last = int(stretch_end[k])
            heads.append(candidates[k : last + 1])
            count += last + 1 - k
            pos = int(after[last])
            continue
        end = pos + 12 + unpack(data, pos)[0]
        if end + 4 > size:
            warn(path, f"record {count} is truncated (file still being written?); read up to it")
            break
        heads.append(np.asarray([pos], dtype=np.int64))
        count += 1
        pos = end + 4
    else:
        if pos != size:
            warn(path, f"record {count} is truncated; read up to it")
    if not heads:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(heads) if len(heads) > 1 else heads[0]


def _candidate_frames(
    buf: np.ndarray[Any, np.dtype[np.uint8]],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(candidate frame offsets, the offset after each candidate's frame, the index of the
    last candidate of the stretch each one starts), whole frames only."""
    size = len(buf)
    if size < 17:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    at = np.flatnonzero(buf[12 : size - 4] == _FIRST_KEY)
    word = _words(buf, "<u8")[at]
    short = word < 1 << 24  # records up to 16 MiB; longer ones are walked in Python
    at = at[short]
    after = at + 16 + word[short].astype(np.int64)
    whole = after <= size
    at, after = at[whole], after[whole]
    # a stretch goes on while a frame ends where the next candidate starts
    breaks = np.flatnonzero(np.append(after[:-1] != at[1:], True))
    stretch_end = breaks[np.searchsorted(breaks, np.arange(len(at)))]
    return at, after, stretch_end


def _stored(
    buf: np.ndarray[Any, np.dtype[np.uint8]], at: np.ndarray[Any, Any], width: int, dtype: Any
) -> Any:
    """Little-endian unsigned integers of `width` bytes at each offset."""
    return _words(buf, f"<u{width}")[at].astype(dtype)


def _tensor_scalar(data: bytes, a: int, b: int) -> float | None:
    """The value of a one-element numeric TensorProto, else None."""
    dtype = 0
    elements = 1
    content: tuple[int, int] | None = None
    values: list[float] = []
    for number, wire, x, y in spans(data, a, b):
        if number == TensorProto.DTYPE and wire == VARINT:
            dtype = x
        elif number == TensorProto.TENSOR_SHAPE and wire == LEN:
            for dnum, dwire, da, db in spans(data, x, y):
                if dnum == TensorShapeProto.DIM and dwire == LEN:
                    for snum, swire, sa, _ in spans(data, da, db):
                        if snum == TensorShapeProto.DIM_SIZE and swire == VARINT:
                            elements *= signed(sa)
        elif number == TensorProto.TENSOR_CONTENT and wire == LEN:
            content = (x, y)
        elif number == TensorProto.FLOAT_VAL:  # packed or not
            _expect(wire, FIXED32, "float_val")
            values.extend(packed_floats(data, x, y) if wire == LEN else [to_float(x)])
        elif number == TensorProto.DOUBLE_VAL:
            _expect(wire, FIXED64, "double_val")
            values.extend(packed_doubles(data, x, y) if wire == LEN else [to_double(x)])
        elif number in TensorProto.INTEGER_VALS:
            _expect(wire, VARINT, "an integer value")
            ints = packed_varints(data, x, y) if wire == LEN else [x]
            values.extend(float(signed(v)) for v in ints)
        elif number == TensorProto.HALF_VAL:
            _expect(wire, VARINT, "half_val")
            bits = packed_varints(data, x, y) if wire == LEN else [x]
            if any(v > 0xFFFF for v in bits):
                raise DecodeError("half_val holds more than 16 bits")
            values.extend(float(struct.unpack("<e", v.to_bytes(2, "little"))[0]) for v in bits)
    if elements != 1 or dtype not in _DTYPES:
        return None
    if content is not None:
        fmt, size = _DTYPES[dtype]
        if content[1] - content[0] != size:
            return None
        return float(struct.unpack_from(fmt, data, content[0])[0])
    if len(values) == 1:
        return values[0]
    return None


def _expect(wire: int, scalar_wire: int, name: str) -> None:
    """A value field must come with its own wire type, or packed (length-delimited)."""
    if wire not in (scalar_wire, LEN):
        raise DecodeError(f"{name} sent with wire type {wire}")


def _plugin(data: bytes, a: int, b: int) -> tuple[str, tuple[int, int] | None]:
    """(plugin name, content span) of a SummaryMetadata."""
    name = ""
    content = None
    for number, wire, x, y in spans(data, a, b):
        if number == SummaryMetadata.PLUGIN_DATA and wire == LEN:
            for pnum, pwire, pa, pb in spans(data, x, y):
                if pnum == PluginData.PLUGIN_NAME and pwire == LEN:
                    name = text(data, pa, pb)
                elif pnum == PluginData.CONTENT and pwire == LEN:
                    content = (pa, pb)
    return name, content


def _struct_value(data: bytes, a: int, b: int, depth: int = 0) -> Any:
    """A google.protobuf.Value (lists and structs nested at most `MAX_NESTING` deep)."""
    if depth > MAX_NESTING:
        raise DecodeError(f"hparams value nested more than {MAX_NESTING} levels deep")
    for number, wire, x, y in spans(data, a, b):
        if number == StructValue.NULL_VALUE:
            return None
        if number == StructValue.NUMBER_VALUE and wire == FIXED64:
            return to_double(x)
        if number == StructValue.STRING_VALUE and wire == LEN:
            return text(data, x, y)
        if number == StructValue.BOOL_VALUE and wire == VARINT:
            return bool(x)
        if number == StructValue.LIST_VALUE and wire == LEN:
            return [
                _struct_value(data, la, lb, depth + 1)
                for n, w, la, lb in spans(data, x, y)
                if n == StructValue.LIST_VALUES
            ]
        if number == StructValue.STRUCT_VALUE and wire == LEN:
            out: dict[str, Any] = {}
            for n, _w, ea, eb in spans(data, x, y):
                if n == StructValue.STRUCT_FIELDS:
                    key, value = _map_entry(data, ea, eb, depth + 1)
                    out[key] = value
            return out
    return None


def _map_entry(data: bytes, a: int, b: int, depth: int = 0) -> tuple[str, Any]:
    key = ""
    value: Any = None
    for number, _wire, x, y in spans(data, a, b):
        if number == StructValue.ENTRY_KEY:
            key = text(data, x, y)
        elif number == StructValue.ENTRY_VALUE:
            value = _struct_value(data, x, y, depth)
    return key, value


def _hparams(data: bytes, a: int, b: int, into: _Scalars) -> None:
    """HParamsPluginData: session_start_info = 3 (hparams = 1, group_name = 4), end = 4."""
    for number, wire, x, y in spans(data, a, b):
        if number == HParamsPluginData.SESSION_START_INFO and wire == LEN:
            for snum, swire, sa, sb in spans(data, x, y):
                if snum == HParamsPluginData.START_HPARAMS and swire == LEN:
                    key, value = _map_entry(data, sa, sb)
                    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
                        value = int(value)
                    into.hparams[key] = value
                elif snum == HParamsPluginData.START_GROUP_NAME and swire == LEN:
                    into.group = text(data, sa, sb) or None
        elif number == HParamsPluginData.SESSION_END_INFO and wire == LEN:
            for enum, ewire, ea, _ in spans(data, x, y):
                if enum == HParamsPluginData.END_STATUS and ewire == VARINT:
                    into.state = HPARAMS_STATUS.get(ea, into.state)


#: (the run's points, event file, metric prefix, the file's bytes) waiting to be decoded.
_Pending = tuple[_Scalars, Path, str, bytes]

#: Event files are decoded together up to this many bytes: numpy's cost per call, paid once
#: per file otherwise, is most of the time for files of a few thousand scalars. Larger
#: batches lose more to the CPU cache than they save (CPU time for 400 files of 5,000
#: scalars: 0.38 s at 4 MiB, 0.42 s at 1 MiB, 0.70 s at 16 MiB).
_BATCH_BYTES = 4 << 20


def _decode_files(batch: list[_Pending], check_crc: bool) -> None:
    """Decode the files of `batch`, in order, into their runs' points."""
    if len(batch) > 1 and _decode_together(batch, check_crc):
        return
    for scalars, path, prefix, data in batch:
        decode_events(data, path, prefix, scalars, check_crc, {})


def _decode_together(batch: list[_Pending], check_crc: bool) -> bool:
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
            heads = _frame_heads(big, buf, batch[0][1])
        except LoadWarning:
            return False
    # Every file must start at a frame: then each file's frames are the ones its own walk
    # finds, and none runs over into the next file.
    opening = bounds[:-1][sizes > 0]
    found = np.searchsorted(heads, opening)
    if len(heads) == 0 or (found >= len(heads)).any() or (heads[found] != opening).any():
        return False
    lengths = _stored(buf, heads, 8, np.uint64).astype(np.int64)
    if check_crc and not frames_intact(buf, heads, lengths):
        return False  # a damaged record, or no C CRC-32C: checked file by file
    starts = heads + 12
    records = (starts, starts + lengths)
    fast = _Scalars()
    untimed: list[tuple[int, float]] = []
    # Categorical from the start: built from the few distinct tags, and what `assemble`
    # makes of the metric column anyway (5 M strings cost more to make and to cast).
    done = _simple_values(big, records, "", fast, untimed, categorical=True)
    if untimed:
        return False
    owner = np.searchsorted(bounds, starts, side="right") - 1
    first_record = np.searchsorted(owner, np.arange(len(batch) + 1))
    simple_rows = np.concatenate([[0], np.cumsum(np.bincount(owner[done], minlength=len(batch)))])
    rest = np.flatnonzero(~done)
    rest_cuts = np.searchsorted(owner[rest], np.arange(len(batch) + 1))
    block = fast.blocks[0] if fast.blocks else None
    if block is not None:  # each file's first and last wall time (all of them are times)
        walls = block["wall"].to_numpy()
        lowest = np.zeros(len(batch))
        highest = np.zeros(len(batch))
        holding = np.flatnonzero(np.diff(simple_rows) > 0)  # files with such rows
        lowest[holding] = np.minimum.reduceat(walls, simple_rows[holding])
        highest[holding] = np.maximum.reduceat(walls, simple_rows[holding])
    # The other records file by file (their points gathered into one frame), then each
    # file's blocks in the order `decode_events` gives them: its simple scalars, the others.
    general = _Rows([], [], [], [])
    counts = [
        _decode_rest(
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


def decode_events(
    data: bytes,
    path: Path,
    prefix: str,
    into: _Scalars,
    check_crc: bool,
    plugins: dict[str, str],
) -> None:
    """Decode the records of `data` (whole records of one event file) into `into`.

    `plugins` (tag -> plugin name, written only with a tag's first value) carries over from
    the earlier records of the same file."""
    records = _frame_records(data, path, check_crc)
    untimed: list[tuple[int, float]] = []  # (record, wall_time) of wall times that are not
    fresh = len(into.blocks)
    done = _simple_values(data, records, prefix, into, untimed)
    rest = np.flatnonzero(~done)
    _decode_rest(data, path, prefix, into, plugins, records, rest, 0, untimed, fresh)


def _decode_rest(
    data: bytes,
    path: Path,
    prefix: str,
    into: _Scalars,
    plugins: dict[str, str],
    records: Records,
    rest: np.ndarray[Any, Any],
    base: int,
    untimed: list[tuple[int, float]],
    fresh: int,
    rows: _Rows | None = None,
) -> int:
    """Decode the records numbered `rest` (those `_simple_values` did not take) with the
    general protobuf walk, then update the run's first and last wall times from its blocks
    from number `fresh` on (the earlier ones are counted already). `base` is the number of
    the file's first record in `records` (several files decoded together): warnings number
    the records within the file. The points go to a new block of `into`, or are added to
    `rows` (the columns of several files' blocks, built at once); returns their number."""
    tags, steps, walls, values = rows if rows is not None else _Rows([], [], [], [])
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
                        _expect(fwire, FIXED32, "simple_value")
                        value = to_float(fa) if fwire == FIXED32 else None
                    elif fnum == Value.TENSOR and fwire == LEN:
                        tensor = (fa, fb)
                    elif fnum == Value.METADATA and fwire == LEN:
                        meta = (fa, fb)
                if meta is not None:
                    plugin, content = _plugin(data, *meta)
                    if plugin:
                        plugins[tag] = plugin
                    if plugin == "hparams" and content is not None:
                        _hparams(data, content[0], content[1], into)
                        continue
                if value is None and tensor is not None:
                    if plugins.get(tag, "scalars") != "scalars":
                        continue
                    value = _tensor_scalar(data, *tensor)
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
        into.blocks.append(_Rows(tags, steps, walls, values).frame())
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


class _Rows(NamedTuple):
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


#: The key bytes (field number << 3 | wire type) of the layout `_simple_values` decodes.
_WALL_KEY = Event.WALL_TIME << 3 | FIXED64
_STEP_KEY = Event.STEP << 3 | VARINT
_SUMMARY_KEY = Event.SUMMARY << 3 | LEN
_VALUE_KEY = Summary.VALUE << 3 | LEN
_TAG_KEY = Value.TAG << 3 | LEN
_SIMPLE_VALUE_KEY = Value.SIMPLE_VALUE << 3 | FIXED32


def _simple_values(
    data: bytes,
    records: Records,
    prefix: str,
    into: _Scalars,
    untimed: list[tuple[int, float]],
    categorical: bool = False,
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Decode, all at once in numpy, the records laid out as tensorboardX and torch write one
    `simple_value` scalar: ``09 <wall:8> 10 <step:varint> 2a <n> 0a <n> 0a <n> <tag> 15
    <value:4>`` with one-byte lengths. Returns which records were decoded; the others go
    through the general decoder (step 0's too, written without a step field: the reader
    has always put their points after the others of their file)."""
    start, end = records
    count = len(start)
    done = np.zeros(count, dtype=np.bool_)
    if count == 0:
        return done
    buf = np.frombuffer(data, dtype=np.uint8)  # every probe below stays inside its record
    length = end - start
    index = np.flatnonzero((length >= 22) & (length < 128))
    at, end = start[index], end[index]
    keep = (buf[at] == _WALL_KEY) & (buf[at + 9] == _STEP_KEY)
    if not keep.all():  # (copies saved when every record has the layout)
        index, at, end = index[keep], at[keep], end[keep]
    # step: a varint of up to 4 bytes (steps below 2**28), read as one little-endian word
    word = _words(buf, "<u4")[at + 10].astype(np.int64)
    more = word & 0x80808080  # each byte's continuation bit
    width = 1 + (more & 0x80 > 0)
    width += (width == 2) & (more & 0x8000 > 0)
    width += (width == 3) & (more & 0x800000 > 0)
    going = (width == 4) & (more & 0x80000000 > 0)  # a fifth byte: not this layout
    payload = word & ~more & (np.int64(1) << (8 * width)) - 1
    step = (
        (payload & 0x7F)
        | (payload >> 1 & 0x3F80)
        | (payload >> 2 & 0x1FC000)
        | (payload >> 3 & 0xFE00000)
    )
    pos = at + 10 + width
    tag_len = buf[pos + 5].astype(np.int64)
    keep = ~going & (buf[pos] == _SUMMARY_KEY) & (buf[pos + 1] == end - pos - 2)
    keep &= (buf[pos + 2] == _VALUE_KEY) & (buf[pos + 3] == end - pos - 4)
    keep &= (buf[pos + 4] == _TAG_KEY) & (tag_len < 0x80) & (pos + 6 + tag_len + 5 == end)
    keep &= buf[np.where(keep, pos + 6 + tag_len, 0)] == _SIMPLE_VALUE_KEY
    if not keep.any():
        return done
    if not keep.all():
        index, at, end, pos, tag_len, step = (
            index[keep],
            at[keep],
            end[keep],
            pos[keep],
            tag_len[keep],
            step[keep],
        )
    done[index] = True
    walls = _words(buf, "<f8")[at + 1]
    wrong = ~((walls >= MIN_SECONDS) & (walls <= MAX_SECONDS))  # NaN too
    if wrong.any():
        untimed.extend(zip(index[wrong].tolist(), walls[wrong].tolist(), strict=True))
        walls = np.where(wrong, np.nan, walls)
    values = _words(buf, "<f4")[end - 4]
    names, codes = _tags(buf, pos + 6, tag_len)
    into.blocks.append(
        pl.DataFrame(
            {
                "metric": pl.Series(
                    [prefix + name for name in names],
                    dtype=pl.Categorical() if categorical else pl.String(),
                ).gather(codes),
                "step": step,
                "wall": walls.astype(np.float64),
                "value": values.astype(np.float64),
            }
        )
    )
    return done


def _words(buf: np.ndarray[Any, np.dtype[np.uint8]], dtype: str) -> np.ndarray[Any, Any]:
    """A view of `buf` as the value of type `dtype` starting at every byte offset."""
    size = np.dtype(dtype).itemsize
    view: np.ndarray[Any, Any] = np.ndarray(
        (max(len(buf) - size + 1, 0),), dtype=dtype, buffer=buf, strides=(1,)
    )
    return view


#: The masks keeping the low 0, 1, ..., 8 bytes of a word.
_LOW_BYTES = np.asarray([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)


def _tags(
    buf: np.ndarray[Any, np.dtype[np.uint8]],
    at: np.ndarray[Any, np.dtype[np.int64]],
    length: np.ndarray[Any, np.dtype[np.int64]],
) -> tuple[list[str], np.ndarray[Any, Any]]:
    """(distinct tags, each record's index into them) of the tags at `at` of `length` bytes.

    Each tag is read as 8-byte words (bytes past its end zeroed) folded into a 64-bit key;
    keys go to 4096 buckets by their top bits, and when every bucket holds one key and every
    record's words equal those of its bucket's first record (no collision), the buckets are
    the groups: no sort. Otherwise the tags are grouped exactly by their bytes."""
    words = _words(buf, "<u8")
    top = len(words) - 1
    lanes = []
    key = length.astype(np.uint64)
    for k in range(-(-max(int(length.max()), 1) // 8)):
        where = at + 8 * k
        if int(where[-1]) > top:  # (records in file order: only the last can reach the end)
            where = np.minimum(where, top)
        lane = words[where] & _LOW_BYTES[np.clip(length - 8 * k, 0, 8)]
        lanes.append(lane)
        key = (key ^ lane) * np.uint64(0x9E3779B97F4A7C15)
    bucket = (key >> np.uint64(52)).astype(np.int64)
    first = np.zeros(4096, dtype=np.int64)
    rows = np.arange(len(at))
    first[bucket[::-1]] = rows[::-1]  # the first record of each bucket
    leader = first[bucket]
    same = length == length[leader]
    for lane in lanes:
        same &= lane == lane[leader]
    if same.all():
        used = np.zeros(4096, dtype=np.int64)
        used[bucket] = 1
        number = np.cumsum(used) - 1
        codes = number[bucket]
        leaders = first[np.flatnonzero(used)]
    else:  # a collision: group the bytes themselves
        stacked = np.ascontiguousarray(np.stack([length.astype(np.uint64), *lanes], axis=1))
        keys = stacked.view(np.dtype((np.void, stacked.shape[1] * 8)))[:, 0]
        _, leaders, codes = np.unique(keys, return_index=True, return_inverse=True)
        codes = codes.ravel()
    # as the reader always named them (trailing NULs dropped)
    names = [
        bytes(buf[int(at[row]) : int(at[row] + length[row])])
        .rstrip(b"\x00")
        .decode("utf-8", "replace")
        for row in leaders.tolist()
    ]
    return names, codes


def _run_folders(source: str | Path) -> tuple[Path, list[tuple[Path, dict[str, Any]]], bool]:
    """(root, [(run folder, template fields)], templated)."""
    text_source = str(source)
    if "{" in text_source or "*" in text_source:
        template = Template.parse(text_source)
        found = []
        for path in template.paths():
            if path.is_dir():
                fields = template.match(path.relative_to(template.root).as_posix()) or {}
                found.append((path, fields))
        return template.root, found, True
    path = Path(text_source)
    if path.is_file():
        return path.parent, [(path.parent, {})], False
    if not path.is_dir():
        raise FileNotFoundError(f"no such TensorBoard log folder: {source}")
    folders = sorted({p.parent for p in walk(path, is_event_file)})
    return path, [(f, {}) for f in folders], False


def is_event_file(name: str) -> bool:
    return name.startswith("events.out.tfevents.")


RunFiles = list[tuple[Path, dict[str, Any], list[tuple[Path, str]]]]


def find_run_files(source: str | Path) -> tuple[Path, bool, RunFiles]:
    """(root, templated, [(run folder, template fields, [(event file, metric prefix)])])."""
    root, folders, templated = _run_folders(source)
    single_file = Path(str(source)).is_file()
    run_files: RunFiles = []
    for folder, fields in folders:
        if single_file:
            files = [(Path(str(source)), "")]
        elif templated:
            files = [
                (
                    p,
                    shown(p.parent.relative_to(folder).as_posix()) + "/"
                    if p.parent != folder
                    else "",
                )
                for p in walk(folder, is_event_file)
            ]
        else:
            files = [(p, "") for p in _event_files(folder)]
        if files:
            run_files.append((folder, fields, files))
    return root, templated, run_files


def _event_files(folder: Path) -> list[Path]:
    """The event files directly in `folder` (FIFOs and devices skipped with a warning)."""
    found = []
    for path in sorted(folder.glob(EVENT_GLOB)):
        try:
            mode = path.stat().st_mode
        except OSError as error:
            warn(path, f"not read ({error.strerror or error}); skipped")
            continue
        if stat.S_ISREG(mode):
            found.append(path)
        elif not stat.S_ISDIR(mode):
            warn(path, "not a regular file (a FIFO, device or socket); skipped")
    return found


def merge_hparams_folders(
    parsed: dict[Path, tuple[dict[str, Any], _Scalars]], root: Path, templated: bool
) -> None:
    """torch's add_hparams() writes its hparams into a timestamped subfolder of the run: a
    folder holding only hparams (and their metric copies) joins its parent run (in place)."""
    if templated:
        return
    for folder in sorted(parsed, key=lambda p: len(p.parts), reverse=True):
        scalars = parsed[folder][1]
        if scalars.hparams and folder.parent in parsed and folder != root:
            parent = parsed[folder.parent][1]
            parent.hparams = {**scalars.hparams, **parent.hparams}
            parent.state = parent.state or scalars.state
            del parsed[folder]


def run_record(
    folder: Path,
    fields: dict[str, Any],
    scalars: _Scalars,
    root: Path,
    options: dict[str, Any],
) -> RunRecord:
    """A run's record; `options`: `project`, `group`, `job_type`, `name`, `hparams` as given
    to `load_tensorboard`."""
    relative = folder.relative_to(root).as_posix() if folder != root else folder.name
    record = RunRecord(
        id=shown(relative or folder.name),
        source=f"tensorboard:{shown(folder)}",
        project=options["project"],
        group=scalars.group,
        state=scalars.state,
    )
    if options["hparams"]:
        record.config.update(scalars.hparams)
    apply_fields(record, fields)
    values = {**record.config, **fields}
    for attribute in ("group", "job_type", "name"):
        value = format_option(options[attribute], values)
        if value is not None:
            setattr(record, attribute, value)
    record.created_at = utc_from_seconds(scalars.first_wall)
    if scalars.first_wall is not None and scalars.last_wall is not None:
        record.runtime = scalars.last_wall - scalars.first_wall
    return record


def timed_points(points: pl.DataFrame | pl.LazyFrame, run_id: Any, first: Any) -> Any:
    """(metric, step, wall, value) -> history chunk columns; `run_id` and `first` (the run's
    first wall time) are values or expressions."""
    run = run_id if isinstance(run_id, pl.Expr) else pl.lit(run_id, pl.String)
    wall = pl.col("wall").fill_nan(None)
    return points.select(
        run.alias("run_id"),
        "metric",
        "step",
        (wall - first).alias("time"),
        (wall * 1e6).round().cast(pl.Int64).cast(pl.Datetime("us", "UTC")).alias("timestamp"),
        "value",
    )


def load_tensorboard(
    source: str | Path,
    *,
    project: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    name: str | None = None,
    hparams: bool = True,
    check_crc: bool = True,
    progress_bar: bool | None = None,
) -> Runs:
    """Load the scalars of TensorBoard event files, one run per folder.

    `source` is a log folder, one event file, or a path template such as
    ``"logs/{algo}/{env}/seed_{seed}"`` (fields -> `config.*`, numbers parsed; fields named
    `group`, `job_type`, `name`, `project` fill those columns). `group`, `job_type`, `name`
    can name a field or be a format string of fields and hparams (``"{algo}-{lr}"``).
    `check_crc=False` skips the checksums (faster; corrupt records are then only caught by
    the protobuf decoding).
    """
    root, templated, run_files = find_run_files(source)
    parsed: dict[Path, tuple[dict[str, Any], _Scalars]] = {}
    batch: list[_Pending] = []
    size = 0
    for folder, fields, files in progress(
        run_files, total=len(run_files), desc="tensorboard", enabled=progress_bar
    ):
        scalars = _Scalars()
        for path, prefix in files:
            try:
                data = read_bytes(path)
            except OSError as error:
                warn(path, f"not read ({error})")
                continue
            batch.append((scalars, path, prefix, data))
            size += len(data)
        parsed[folder] = (fields, scalars)
        if size >= _BATCH_BYTES:
            _decode_files(batch, check_crc)
            batch, size = [], 0
    _decode_files(batch, check_crc)

    merge_hparams_folders(parsed, root, templated)
    options = {
        "project": project,
        "group": group,
        "job_type": job_type,
        "name": name,
        "hparams": hparams,
    }
    records: list[RunRecord] = []
    blocks: list[pl.DataFrame] = []
    owners: list[str] = []
    firsts: list[float] = []
    heights: list[int] = []
    for folder, (fields, scalars) in parsed.items():
        record = run_record(folder, fields, scalars, root, options)
        records.append(record)
        height = sum(block.height for block in scalars.blocks)
        if height:
            blocks += scalars.blocks
            owners.append(record.id)
            firsts.append(scalars.first_wall if scalars.first_wall is not None else 0.0)
            heights.append(height)
    if not blocks:
        return assemble(records, [])
    # One select for all runs (not one per run): each point's run and its run's first time.
    # Run and metric names categorical already, as `assemble` makes them (blocks decoded
    # file by file have metric names as strings).
    spread = np.repeat(np.arange(len(owners)), heights)
    points = pl.concat(
        [
            b.with_columns(pl.col("metric").cast(pl.Categorical))
            if b.schema["metric"] == pl.String
            else b
            for b in blocks
        ]
    ).with_columns(
        pl.Series("run_id", owners, dtype=pl.Categorical).gather(spread),
        pl.Series("first", firsts, dtype=pl.Float64).gather(spread),
    )
    return assemble(records, [timed_points(points, pl.col("run_id"), pl.col("first"))])
