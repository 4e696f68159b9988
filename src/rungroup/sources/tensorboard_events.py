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

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rungroup.runs import Runs
from rungroup.sources.castagnoli import masked_crc32c_many
from rungroup.sources.protoreader import (
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
    RunRecord,
    Template,
    apply_fields,
    assemble,
    chunk,
    format_option,
    progress,
    utc_from_seconds,
    warn,
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

    tags: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    first_wall: float | None = None
    last_wall: float | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    state: str | None = None


def _frame_records(data: bytes, path: Path, check_crc: bool) -> list[tuple[int, int]]:
    """(start, end) of each record's data, verified; stops at a truncated or corrupt record."""
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    size = len(data)
    while pos + 12 <= size:
        length = int.from_bytes(data[pos : pos + 8], "little")
        end = pos + 12 + length
        if end + 4 > size:
            warn(
                path,
                f"record {len(starts)} is truncated (file still being written?); read up to it",
            )
            break
        starts.append(pos + 12)
        ends.append(end)
        pos = end + 4
    else:
        if pos != size:
            warn(path, f"record {len(starts)} is truncated; read up to it")
    if not check_crc or not starts:
        return list(zip(starts, ends, strict=True))
    buf = np.frombuffer(data, dtype=np.uint8)
    start_arr = np.asarray(starts, dtype=np.int64)
    end_arr = np.asarray(ends, dtype=np.int64)
    stored_len = _stored_crcs(buf, start_arr - 4)
    length_ok = masked_crc32c_many(buf, start_arr - 12, np.full(len(starts), 8)) == stored_len
    count = len(starts)
    if not length_ok.all():
        count = int(np.argmin(length_ok))
        warn(path, f"record {count}: length checksum mismatch (corrupt file); read up to it")
    stored_data = _stored_crcs(buf, end_arr[:count])
    data_ok = masked_crc32c_many(buf, start_arr[:count], (end_arr - start_arr)[:count])
    bad = np.flatnonzero(data_ok != stored_data)
    for index in bad[:3]:
        warn(path, f"record {int(index)}: data checksum mismatch; record skipped")
    if len(bad) > 3:
        warn(path, f"{len(bad) - 3} more records with a data checksum mismatch skipped")
    skip = set(bad.tolist())
    return [(starts[i], ends[i]) for i in range(count) if i not in skip]


def _stored_crcs(buf: np.ndarray[Any, np.dtype[np.uint8]], at: np.ndarray[Any, Any]) -> Any:
    index = at[:, None] + np.arange(4)[None, :]
    return buf[index].astype(np.uint32) @ np.array([1, 1 << 8, 1 << 16, 1 << 24], np.uint32)


def _tensor_scalar(data: bytes, a: int, b: int) -> float | None:
    """The value of a one-element numeric TensorProto, else None."""
    dtype = 0
    elements = 1
    content: tuple[int, int] | None = None
    values: list[float] = []
    for number, wire, x, y in spans(data, a, b):
        if number == 1 and wire == 0:
            dtype = x
        elif number == 2 and wire == 2:  # TensorShapeProto: dim = 2 { size = 1 }
            for dnum, dwire, da, db in spans(data, x, y):
                if dnum == 2 and dwire == 2:
                    for snum, swire, sa, _ in spans(data, da, db):
                        if snum == 1 and swire == 0:
                            elements *= signed(sa)
        elif number == 4 and wire == 2:
            content = (x, y)
        elif number == 5:  # float_val, packed or not
            values.extend(packed_floats(data, x, y) if wire == 2 else [to_float(x)])
        elif number == 6:  # double_val
            values.extend(packed_doubles(data, x, y) if wire == 2 else [to_double(x)])
        elif number in (7, 10, 11, 16, 17):  # int_val, int64_val, bool_val, uint32/64_val
            ints = packed_varints(data, x, y) if wire == 2 else [x]
            values.extend(float(signed(v)) for v in ints)
        elif number == 13:  # half_val: float16 bits in int32
            bits = packed_varints(data, x, y) if wire == 2 else [x]
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


def _plugin(data: bytes, a: int, b: int) -> tuple[str, tuple[int, int] | None]:
    """(plugin name, content span) of a SummaryMetadata."""
    name = ""
    content = None
    for number, wire, x, y in spans(data, a, b):
        if number == 1 and wire == 2:  # plugin_data
            for pnum, pwire, pa, pb in spans(data, x, y):
                if pnum == 1 and pwire == 2:
                    name = text(data, pa, pb)
                elif pnum == 2 and pwire == 2:
                    content = (pa, pb)
    return name, content


def _struct_value(data: bytes, a: int, b: int) -> Any:
    """A google.protobuf.Value."""
    for number, wire, x, y in spans(data, a, b):
        if number == 1:
            return None
        if number == 2 and wire == 1:
            return to_double(x)
        if number == 3 and wire == 2:
            return text(data, x, y)
        if number == 4 and wire == 0:
            return bool(x)
        if number == 6 and wire == 2:  # ListValue: values = 1
            return [_struct_value(data, la, lb) for n, w, la, lb in spans(data, x, y) if n == 1]
        if number == 5 and wire == 2:  # Struct: fields = 1 map<string, Value>
            out: dict[str, Any] = {}
            for n, _w, ea, eb in spans(data, x, y):
                if n == 1:
                    key, value = _map_entry(data, ea, eb)
                    out[key] = value
            return out
    return None


def _map_entry(data: bytes, a: int, b: int) -> tuple[str, Any]:
    key = ""
    value: Any = None
    for number, _wire, x, y in spans(data, a, b):
        if number == 1:
            key = text(data, x, y)
        elif number == 2:
            value = _struct_value(data, x, y)
    return key, value


def _hparams(data: bytes, a: int, b: int, into: _Scalars) -> None:
    """HParamsPluginData: session_start_info = 3 (hparams = 1, group_name = 4), end = 4."""
    for number, wire, x, y in spans(data, a, b):
        if number == 3 and wire == 2:
            for snum, swire, sa, sb in spans(data, x, y):
                if snum == 1 and swire == 2:
                    key, value = _map_entry(data, sa, sb)
                    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
                        value = int(value)
                    into.hparams[key] = value
                elif snum == 4 and swire == 2:
                    into.group = text(data, sa, sb) or None
        elif number == 4 and wire == 2:
            for enum, ewire, ea, _ in spans(data, x, y):
                if enum == 1 and ewire == 0:
                    into.state = HPARAMS_STATUS.get(ea, into.state)


def _read_file(path: Path, prefix: str, into: _Scalars, check_crc: bool) -> None:
    data = path.read_bytes()
    plugins: dict[str, str] = {}
    tags, steps, walls, values = into.tags, into.steps, into.walls, into.values
    first = into.first_wall
    last = into.last_wall
    unpack_double = _DOUBLE.unpack_from
    unpack_float = _FLOAT.unpack_from
    tag_cache: dict[bytes, str] = {}
    for index, (start, end) in enumerate(_frame_records(data, path, check_crc)):
        # Fast path: the layout tensorboardX and torch write for one simple_value scalar,
        # 09 <wall> 10 <step> 2a <n> 0a <n> 0a <n> <tag> 15 <float>, one byte per length.
        if data[start] == 0x09 and data[start + 9] == 0x10 and end - start < 200:
            pos = start + 10
            step = 0
            shift = 0
            while True:
                byte = data[pos]
                step |= (byte & 0x7F) << shift
                pos += 1
                if byte < 0x80:
                    break
                shift += 7
            if (
                pos + 4 < end
                and data[pos] == 0x2A
                and data[pos + 1] == end - pos - 2
                and data[pos + 2] == 0x0A
                and data[pos + 3] == end - pos - 4
                and data[pos + 4] == 0x0A
            ):
                tag_end = pos + 6 + data[pos + 5]
                if tag_end + 5 == end and data[tag_end] == 0x15 and data[pos + 5] < 0x80:
                    wall = unpack_double(data, start + 1)[0]
                    raw_tag = data[pos + 6 : tag_end]
                    tag = tag_cache.get(raw_tag)
                    if tag is None:
                        tag = tag_cache[raw_tag] = prefix + raw_tag.decode("utf-8", "replace")
                    tags.append(tag)
                    steps.append(signed(step))
                    walls.append(wall)
                    values.append(unpack_float(data, tag_end + 1)[0])
                    first = wall if first is None or wall < first else first
                    last = wall if last is None or wall > last else last
                    continue
        try:
            wall = None
            step = 0
            summary: tuple[int, int] | None = None
            for number, wire, x, y in spans(data, start, end):
                if number == 1 and wire == 1:
                    wall = to_double(x)
                elif number == 2 and wire == 0:
                    step = signed(x)
                elif number == 5 and wire == 2:
                    summary = (x, y)
            if wall is not None:
                first = wall if first is None or wall < first else first
                last = wall if last is None or wall > last else last
            if summary is None:
                continue
            for number, wire, va, vb in spans(data, summary[0], summary[1]):
                if number != 1 or wire != 2:
                    continue
                tag = ""
                value: float | None = None
                tensor: tuple[int, int] | None = None
                meta: tuple[int, int] | None = None
                for fnum, fwire, fa, fb in spans(data, va, vb):
                    if fnum == 1 and fwire == 2:
                        tag = text(data, fa, fb)
                    elif fnum == 2 and fwire == 5:
                        value = to_float(fa)
                    elif fnum == 8 and fwire == 2:
                        tensor = (fa, fb)
                    elif fnum == 9 and fwire == 2:
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
        except (DecodeError, IndexError, struct.error, UnicodeDecodeError) as error:
            warn(path, f"record {index} is not a readable event ({error}); skipped")
    into.first_wall = first
    into.last_wall = last


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
    folders = sorted({p.parent for p in path.rglob(EVENT_GLOB) if p.is_file()})
    return path, [(f, {}) for f in folders], False


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
    root, folders, templated = _run_folders(source)
    single_file = Path(str(source)).is_file()
    run_files: list[tuple[Path, dict[str, Any], list[tuple[Path, str]]]] = []
    for folder, fields in folders:
        if single_file:
            files = [(Path(str(source)), "")]
        elif templated:
            files = [
                (p, p.parent.relative_to(folder).as_posix() + "/" if p.parent != folder else "")
                for p in sorted(folder.rglob(EVENT_GLOB))
                if p.is_file()
            ]
        else:
            files = [(p, "") for p in sorted(folder.glob(EVENT_GLOB)) if p.is_file()]
        if files:
            run_files.append((folder, fields, files))

    parsed: dict[Path, tuple[dict[str, Any], _Scalars]] = {}
    for folder, fields, files in progress(
        run_files, total=len(run_files), desc="tensorboard", enabled=progress_bar
    ):
        scalars = _Scalars()
        for path, prefix in files:
            try:
                _read_file(path, prefix, scalars, check_crc)
            except OSError as error:
                warn(path, f"not read ({error})")
        parsed[folder] = (fields, scalars)

    if not templated:
        # torch's add_hparams() writes its hparams into a timestamped subfolder of the run:
        # a folder holding only hparams (and their metric copies) joins its parent run.
        for folder in sorted(parsed, key=lambda p: len(p.parts), reverse=True):
            fields, scalars = parsed[folder]
            if scalars.hparams and folder.parent in parsed and folder != root:
                parent = parsed[folder.parent][1]
                parent.hparams = {**scalars.hparams, **parent.hparams}
                parent.state = parent.state or scalars.state
                del parsed[folder]

    records: list[RunRecord] = []
    chunks: list[pl.DataFrame] = []
    for folder, (fields, scalars) in parsed.items():
        relative = folder.relative_to(root).as_posix() if folder != root else folder.name
        record = RunRecord(
            id=relative or folder.name,
            source=f"tensorboard:{folder}",
            project=project,
            group=scalars.group,
            state=scalars.state,
        )
        if hparams:
            record.config.update(scalars.hparams)
        apply_fields(record, fields)
        values = {**record.config, **fields}
        for attribute, option in (("group", group), ("job_type", job_type), ("name", name)):
            value = format_option(option, values)
            if value is not None:
                setattr(record, attribute, value)
        record.created_at = utc_from_seconds(scalars.first_wall)
        if scalars.first_wall is not None and scalars.last_wall is not None:
            record.runtime = scalars.last_wall - scalars.first_wall
        records.append(record)
        if scalars.values:
            walls = np.asarray(scalars.walls, dtype=np.float64)
            first = scalars.first_wall if scalars.first_wall is not None else 0.0
            stamps = np.where(np.isfinite(walls), np.round(walls * 1e6), np.nan)
            chunks.append(
                chunk(
                    record.id,
                    scalars.tags,
                    scalars.steps,
                    scalars.values,
                    time=pl.Series(walls - first).fill_nan(None),
                    timestamp_us=pl.Series(stamps).fill_nan(None).cast(pl.Int64),
                )
            )
    return assemble(records, chunks)
