"""W&B run folders (`wandb/offline-run-*`, `wandb/run-*`), read without wandb or syncing.

A `run-<id>.wandb` file starts with a 7-byte header (":W&B", magic 0xBEE1, version) and then
follows LevelDB's log format: 32 KiB blocks of records, each `crc32 (4, zlib's CRC-32 of the
type byte and the data), length (2), type (1: full, 2: first, 3: middle, 4: last), data`; a
block's last < 7 bytes are padding. Joined, each record is a `wandb_internal.Record` protobuf:
run = 17 (id, project, config, group, job type, name, tags, start time), config = 5,
history = 2, summary = 3, exit = 18 (exit code, runtime), preempting = 23.
"""

from __future__ import annotations

import math
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rungroup.runs import Runs
from rungroup.sources.files import json_value, read_bytes, walk
from rungroup.sources.protoreader import DecodeError, signed, spans, text, to_double, zigzag
from rungroup.sources.runrecords import (
    MAX_STEP,
    RunRecord,
    assemble,
    chunk,
    is_time,
    progress,
    shown,
    utc_from_seconds,
    warn,
)
from rungroup.sources.wandb import bulk

__all__ = ["is_wandb", "load_wandb"]

HEADER = b":W&B"
HEADER_SIZE = 7
BLOCK = 32768
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
#: A run without an exit record whose file changed this recently is taken to be running.
RUNNING_WITHIN = 120.0
#: History keys that wandb adds itself; they fill step / time / timestamp, not metrics.
_STEP, _RUNTIME, _TIMESTAMP = "_step", "_runtime", "_timestamp"


def is_wandb(source: Any) -> bool:
    """True for a .wandb file, a run folder, or a folder with run folders (e.g. `wandb/`)."""
    try:
        path = Path(source)
        if path.is_file():
            return path.suffix == ".wandb"
        if not path.is_dir():
            return False
        for pattern in ("run-*.wandb", "*run-*/run-*.wandb", "wandb/*run-*/run-*.wandb"):
            if next(iter(path.glob(pattern)), None) is not None:
                return True
    except (OSError, TypeError):
        return False
    return False


def read_records(path: Path) -> tuple[list[bytes], list[str]]:
    """The records of a .wandb file, and a list of problems (corrupt or truncated records)."""
    return records_of(read_bytes(path))


def records_of(data: bytes) -> tuple[list[bytes], list[str]]:
    """The records in a .wandb file's bytes, and a list of problems."""
    if len(data) < HEADER_SIZE or data[:4] != HEADER:
        raise ValueError("not a W&B run file (no ':W&B' header)")
    records, problems, _ = scan_records(data, HEADER_SIZE)
    return records, problems


def scan_records(
    data: bytes, pos: int, *, base: int = 0, follow: bool = False
) -> tuple[list[bytes], list[str], int]:
    """(records, problems, end) of the log in `data` from `pos`; `data[0]` is at offset
    `base` of the file (blocks are counted from the file's start). `end` is the position just
    past the last complete record, where a later read of a growing file resumes. With
    `follow`, a zero-filled record header with nothing written after it is taken as the end
    of what is written so far, not as padding."""
    problems: list[str] = []
    records: list[bytes] = []
    pending: list[bytes] | None = None
    size = len(data)
    index = 0
    complete = pos
    while pos < size:
        left_in_block = BLOCK - (base + pos) % BLOCK
        if left_in_block < RECORD_HEADER:
            pos += left_in_block  # padding
            if pending is None:
                complete = min(pos, size)
            continue
        if pos + RECORD_HEADER > size:
            problems.append(f"record {index} is truncated")
            break
        checksum, length, kind = struct.unpack_from("<IHB", data, pos)
        start = pos + RECORD_HEADER
        end = start + length
        if kind == 0 and length == 0 and checksum == 0:
            if follow and not data[pos + left_in_block :].strip(b"\0"):
                break  # (preallocated) zeros the writer has not reached yet
            pos += left_in_block  # zero-filled rest of a block (preallocated file)
            if pending is None:
                complete = min(pos, size)
            continue
        if end > size:
            problems.append(f"record {index} is truncated")
            break
        if end > pos + left_in_block:
            problems.append(f"record {index} crosses a block boundary (corrupt); skipped")
            pos += left_in_block
            pending = None
            complete = min(pos, size)
            continue
        chunk_bytes = data[start:end]
        pos = end
        if zlib.crc32(chunk_bytes, zlib.crc32(bytes([kind]))) != checksum:
            problems.append(f"record {index}: checksum mismatch; skipped")
            pending = None
            index += 1
            complete = pos
            continue
        if kind == FULL:
            records.append(chunk_bytes)
            index += 1
        elif kind == FIRST:
            pending = [chunk_bytes]
        elif kind == MIDDLE and pending is not None:
            pending.append(chunk_bytes)
        elif kind == LAST and pending is not None:
            pending.append(chunk_bytes)
            records.append(b"".join(pending))
            pending = None
            index += 1
        else:
            problems.append(f"record {index}: unexpected fragment type {kind}; skipped")
            pending = None
        if pending is None:
            complete = pos
    if pending is not None:
        problems.append(f"record {index} is truncated")
    return records, problems, complete


@dataclass
class _Run:
    run_id: str | None = None
    project: str | None = None
    entity: str | None = None
    group: str | None = None
    job_type: str | None = None
    name: str | None = None
    notes: str | None = None
    tags: list[str] = field(default_factory=list)
    start: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    runtime: float | None = None
    preempted: bool = False
    metrics: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    times: list[float | None] = field(default_factory=list)
    stamps: list[int | None] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    last_runtime: float | None = None
    #: the history as points (metric, step, time, timestamp, value) when `bulk` decoded the
    #: file; then the lists above stay empty
    points: pl.DataFrame | None = None
    #: what the record being decoded had wrong but could be read around (warned with its
    #: number by `apply_records`)
    problems: list[str] = field(default_factory=list)


def _key(data: bytes, a: int, b: int, problems: list[str] | None = None) -> tuple[str, Any]:
    """A ConfigItem / SummaryItem / HistoryItem: (dotted key, decoded value)."""
    key = ""
    nested: list[str] = []
    value: Any = None
    has_value = False
    for number, wire, x, y in spans(data, a, b):
        if number == 1 and wire == 2:
            key = text(data, x, y)
        elif number == 2 and wire == 2:
            nested.append(text(data, x, y))
        elif number == 16 and wire == 2:
            value = _json(text(data, x, y), problems)
            has_value = True
        elif not has_value:
            if number == 6 and wire == 1:  # number (double)
                value = to_double(x)
            elif number == 5 and wire == 0:  # integer (sint64)
                value = zigzag(x)
            elif number == 4 and wire == 0:  # boolean
                value = bool(x)
            elif number == 7 and wire == 2:  # text
                value = text(data, x, y)
            elif number == 8 and wire == 2:  # json
                value = _json(text(data, x, y), problems)
                if isinstance(value, str):
                    value = None
    return (".".join(nested) if nested else key), value


def _json(raw: str, problems: list[str] | None = None) -> Any:
    """A value_json: numbers (most history values) without the json module's overhead.

    Lone surrogates are replaced (`files.json_value`) and a value nested too deeply is kept
    as its text; either is noted in `problems`."""
    try:
        return float(raw) if "." in raw or "e" in raw or "N" in raw or "I" in raw else int(raw)
    except ValueError:
        try:
            value, repaired = json_value(raw)
        except ValueError as error:
            if problems is not None and "nested" in str(error):
                problems.append(f"a value {error}; kept as text")
            return raw
        if repaired and problems is not None:
            problems.append("a lone surrogate (\\udXXX) in a name or text replaced by U+FFFD")
        return value


def _fast_item(data: bytes, a: int, b: int) -> tuple[str, str] | None:
    """(key, value_json) of an item with one key (`key = 1` or one `nested_key = 2`) and
    `value_json = 16`, else None.

    Every history item and summary update that wandb writes has this shape; decoding it
    without the generic field iterator is several times faster.
    """
    if data[a] != 0x0A and data[a] != 0x12:  # key = 1, or a single nested_key = 2
        return None
    n = data[a + 1]
    if n >= 0x80:
        return None
    key_end = a + 2 + n
    if key_end + 3 > b or data[key_end] != 0x82 or data[key_end + 1] != 0x01:
        return None
    m = data[key_end + 2]
    if m >= 0x80:
        if key_end + 4 > b or data[key_end + 3] >= 0x80:
            return None
        m = (m & 0x7F) | (data[key_end + 3] << 7)
        start = key_end + 4
    else:
        start = key_end + 3
    if start + m != b:
        return None
    key = data[a + 2 : key_end].decode("utf-8", "replace")
    return key, data[start:b].decode("utf-8", "replace")


def _len_fields(data: bytes, a: int, b: int) -> list[tuple[int, int, int]] | None:
    """(field, start, end) of a message made only of length-delimited fields with lengths
    below 16 KiB (history, summary and config records are), else None."""
    out = []
    pos = a
    while pos < b:
        key = data[pos]
        if key >= 0x80 or key & 7 != 2:
            return None
        n = data[pos + 1]
        if n < 0x80:
            start = pos + 2
        else:
            high = data[pos + 2]
            if high >= 0x80:
                return None
            n = (n & 0x7F) | (high << 7)
            start = pos + 3
        pos = start + n
        if pos > b:
            return None
        out.append((key >> 3, start, pos))
    return out


def _items(
    data: bytes, a: int, b: int, into: dict[str, Any], problems: list[str] | None = None
) -> None:
    """ConfigRecord / SummaryRecord: update = 1, remove = 2."""
    listed = _len_fields(data, a, b)
    fields = [(n, 2, x, y) for n, x, y in listed] if listed is not None else list(spans(data, a, b))
    for number, wire, x, y in fields:
        if wire != 2:
            continue
        fast = _fast_item(data, x, y) if number == 1 else None
        if fast is not None:
            into[fast[0]] = _Raw(fast[1])  # decoded once, at the end
            continue
        key, value = _key(data, x, y, problems)
        if number == 1:
            into[key] = value
        elif number == 2:
            into.pop(key, None)


class _Raw(str):
    """A value_json not decoded yet (summary values are overwritten many times)."""


def _decoded(mapping: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    return {k: _json(v, problems) if isinstance(v, _Raw) else v for k, v in mapping.items()}


def _run_record(data: bytes, a: int, b: int, run: _Run) -> None:
    for number, wire, x, y in spans(data, a, b):
        if wire == 2:
            if number == 1:
                run.run_id = text(data, x, y) or run.run_id
            elif number == 2:
                run.entity = text(data, x, y) or None
            elif number == 3:
                run.project = text(data, x, y) or run.project
            elif number == 4:
                _items(data, x, y, run.config, run.problems)
            elif number == 5:
                _items(data, x, y, run.summary, run.problems)
            elif number == 6:
                run.group = text(data, x, y) or run.group
            elif number == 7:
                run.job_type = text(data, x, y) or run.job_type
            elif number == 8:
                run.name = text(data, x, y) or run.name
            elif number == 9:
                run.notes = text(data, x, y) or None
            elif number == 10:
                tag = text(data, x, y)
                if tag not in run.tags:
                    run.tags.append(tag)
            elif number == 17:  # google.protobuf.Timestamp
                seconds = nanos = 0
                for tnum, twire, tx, _ in spans(data, x, y):
                    if tnum == 1 and twire == 0:
                        seconds = signed(tx)
                    elif tnum == 2 and twire == 0:
                        nanos = tx
                run.start = seconds + nanos / 1e9


def _history(data: bytes, a: int, b: int, run: _Run) -> set[bytes]:
    """Add one history row to `run`; returns the raw bytes of its items."""
    step: int | None = None
    points: list[tuple[str, Any]] = []
    listed = _len_fields(data, a, b)
    fields = [(n, 2, x, y) for n, x, y in listed] if listed is not None else list(spans(data, a, b))
    raw_items: set[bytes] = set()
    for number, wire, x, y in fields:
        if number == 1 and wire == 2:
            raw_items.add(data[x:y])
            fast = _fast_item(data, x, y)
            points.append(
                (fast[0], _json(fast[1], run.problems))
                if fast is not None
                else _key(data, x, y, run.problems)
            )
        elif number == 2 and wire == 2:
            for snum, swire, sx, _ in spans(data, x, y):
                if snum == 1 and swire == 0:
                    step = signed(sx)
    runtime: float | None = None
    stamp: int | None = None
    metrics: list[tuple[str, float]] = []
    for key, value in points:
        if key == _STEP:
            if step is None and isinstance(value, (int, float)):
                if not -MAX_STEP <= value <= MAX_STEP:  # NaN too
                    raise DecodeError(f"_step {value!r} is not a step number")
                step = int(value)
        elif key == _RUNTIME:
            runtime = float(value) if isinstance(value, (int, float)) else None
            if runtime is not None and not math.isfinite(runtime):
                run.problems.append(f"_runtime {runtime!r} is not a time; left out")
                runtime = None
        elif key == _TIMESTAMP:
            if isinstance(value, (int, float)):
                if is_time(value):
                    stamp = round(value * 1e6)
                else:
                    run.problems.append(f"_timestamp {value!r} is not a time; left out")
        elif type(value) is float or type(value) is int:
            metrics.append((key, float(value)))
        else:
            _numbers(key, value, metrics)
    if step is None:
        step = run.steps[-1] + 1 if run.steps else 0
    if runtime is not None:
        run.last_runtime = runtime
    for key, point in metrics:
        run.metrics.append(key)
        run.steps.append(step)
        run.times.append(runtime)
        run.stamps.append(stamp)
        run.values.append(point)
    return raw_items


def _auto_summary(data: bytes, a: int, b: int, row: set[bytes], run: _Run) -> bool:
    """A summary record that only repeats the items of a history row (wandb writes one
    with every `log`, just before the row) or sets wandb's own `_` keys: nothing to decode.
    The summary of those keys is their last value, derived from the history; any explicit
    value they had is dropped, as W&B's summary follows the latest logged value."""
    listed = _len_fields(data, a, b)
    if not listed:
        return False
    keys = []
    for number, x, y in listed:
        if number != 1 or y - x < 3 or data[x] not in (0x0A, 0x12) or data[x + 1] >= 0x80:
            return False
        key = data[x + 2 : x + 2 + data[x + 1]]
        if key.startswith(b"_"):
            continue  # wandb's own keys are left out of the summary anyway
        if data[x:y] not in row:
            return False
        keys.append(key)
    for key in keys:
        run.summary.pop(key.decode("utf-8", "replace"), None)
    return True


def _numbers(key: str, value: Any, out: list[tuple[str, float]]) -> None:
    """Numeric history values (nested dicts flattened with '.'; media and text skipped)."""
    if isinstance(value, (int, float)):  # bool is an int
        out.append((key, float(value)))
    elif isinstance(value, dict) and "_type" not in value:
        for sub, inner in value.items():
            _numbers(f"{key}.{sub}", inner, out)


@dataclass
class Reading:
    """A run being decoded record by record (kept between the reads of a growing file)."""

    run: _Run = field(default_factory=_Run)
    #: the raw items of the last history row
    row: set[bytes] = field(default_factory=set)
    #: summary records waiting for the next history row (to compare with it)
    pending: list[tuple[bytes, int, int]] = field(default_factory=list)


def apply_field(record: bytes, number: int, x: int, y: int, run: _Run) -> None:
    """A field of a record other than history (2) and summary (3): run = 17, config = 5,
    exit = 18, preempting = 23; others are not needed."""
    if number == 17:
        _run_record(record, x, y, run)
    elif number == 5:
        _items(record, x, y, run.config)
    elif number == 18:
        for enum, ewire, ex, _ in spans(record, x, y):
            if enum == 1 and ewire == 0:
                run.exit_code = signed(ex) if ex < 1 << 32 else ex - (1 << 64)
            elif enum == 2 and ewire == 0:
                run.runtime = float(signed(ex))
        if run.exit_code is None:
            run.exit_code = 0
    elif number == 23:
        run.preempted = True


def apply_records(records: list[bytes], reading: Reading, path: Path, first: int = 0) -> None:
    """Decode `records` (numbered from `first` in warnings) into `reading`."""
    run = reading.run
    pending = reading.pending
    for index, record in enumerate(records, first):
        try:
            for number, wire, x, y in spans(record):
                if wire != 2:
                    continue
                if number == 2:
                    reading.row = _history(record, x, y, run)
                    for held in pending:
                        if not _auto_summary(*held, reading.row, run):
                            _items(*held, run.summary)
                    pending.clear()
                elif number == 3:
                    pending.append((record, x, y))  # compared with the next history row
                else:
                    apply_field(record, number, x, y, run)
        except (ValueError, OverflowError, IndexError, struct.error) as error:
            # DecodeError is a ValueError
            warn(path, f"record {index} is not a readable W&B record ({error}); skipped")
        if run.problems:
            warn(path, f"record {index}: {'; '.join(dict.fromkeys(run.problems))}")
            run.problems.clear()


def settled(reading: Reading, path: Path) -> _Run:
    """The run as read so far, with the summaries after its last history row applied (to a
    copy of the summary: `reading` can go on with the next records)."""
    run = replace(reading.run, summary=dict(reading.run.summary))
    for held in reading.pending:  # summaries after the last history row
        try:
            if not _auto_summary(*held, set(), run):
                _items(*held, run.summary)
        except (ValueError, OverflowError, IndexError, struct.error) as error:
            warn(path, f"a summary record is not readable ({error}); skipped")
    return run


def _read_runs(files: list[Path]) -> Iterator[tuple[Path, _Run | None]]:
    """Each file's run, decoded in bulk where it can be, else the general way; big folders
    by this process and a worker process together (`parallel.py`)."""
    from rungroup.sources.wandb import parallel

    return parallel.read_runs(files, _read_batch, _read_run)


def _read_batch(batch: list[Path]) -> list[tuple[Path, _Run | None]]:
    """The runs of a few files decoded together (numpy's fixed costs shared)."""
    datas: list[bytes] = []
    for path in batch:
        try:
            datas.append(read_bytes(path))
        except OSError:
            datas.append(b"")  # the general way says so
    return [
        (path, fast if fast is not None else _read_run(path))
        for path, fast in zip(batch, bulk.read_runs(datas, batch), strict=True)
    ]


def _read_run(path: Path) -> _Run | None:
    try:
        records, problems = read_records(path)
    except (OSError, ValueError) as error:
        warn(path, f"not read ({error})")
        return None
    reading = Reading()
    apply_records(records, reading, path)
    run = settled(reading, path)
    if run.exit_code is None:
        # A run still being written ends in a partial record; that is not worth a warning.
        recent = time.time() - path.stat().st_mtime < RUNNING_WITHIN
        problems = [p for p in problems if not (recent and "truncated" in p)]
    for problem in problems:
        warn(path, problem)
    return run


def _state(run: _Run, path: Path) -> str:
    if run.exit_code is not None:
        return "finished" if run.exit_code == 0 else "failed"
    if run.preempted:
        return "crashed"
    try:
        recent = time.time() - path.stat().st_mtime < RUNNING_WITHIN
    except OSError:
        recent = False
    return "running" if recent else "crashed"


def _find_files(source: str | Path) -> list[Path]:
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no such W&B folder or file: {source}")
    files = walk(path, _is_run_file)
    # `wandb/latest-run` is a link to (or, once copied, a copy of) one of the run folders.
    names = {f.name for f in files if f.parent.name != "latest-run"}
    unique: dict[Path, Path] = {}
    for f in files:
        if f.parent.name == "latest-run" and f.name in names:
            continue
        unique.setdefault(f.resolve(), f)
    return sorted(unique.values())


def _is_run_file(name: str) -> bool:
    return name.startswith("run-") and name.endswith(".wandb")


def load_wandb(
    source: str | Path = "wandb",
    *,
    project: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    progress_bar: bool | None = None,
) -> Runs:
    """Load W&B runs from their local files, offline or synced, without wandb installed.

    `source`: a `wandb/` folder (every `offline-run-*` and `run-*` folder below it), one run
    folder, or one `run-<id>.wandb` file. `project`, `group`, `job_type` fill those columns
    for runs that did not set them. A run logged twice (resumed) appears once per folder,
    with the folder name appended to its id.
    """
    files = _find_files(source)
    parsed: list[tuple[Path, _Run]] = []
    read = _read_runs(files)
    for path, run in progress(read, total=len(files), desc="wandb", enabled=progress_bar):
        if run is not None:
            parsed.append((path, run))
    records: list[RunRecord] = []
    chunks: list[pl.DataFrame] = []
    held: list[tuple[str, pl.DataFrame]] = []  # runs decoded in bulk, not yet in a chunk
    for (path, run), run_id in zip(parsed, run_ids(parsed), strict=True):
        records.append(run_record(path, run, run_id, project, group, job_type))
        if run.points is not None and run.points.height:
            held.append((run_id, run.points))
        elif run.values:
            chunks += [*_bulk_chunk(held), run_chunk(run_id, run)]
            held = []
    return assemble(records, [*chunks, *_bulk_chunk(held)])


def _bulk_chunk(runs: list[tuple[str, pl.DataFrame]]) -> list[pl.DataFrame]:
    """The histories of runs decoded in bulk (in order) as one chunk: what `run_chunk` makes
    of each, joined, without a handful of Polars calls a run."""
    if not runs:
        return []
    points = pl.concat([p for _, p in runs], rechunk=True)
    heights = np.array([p.height for _, p in runs], np.int64)
    ids = pl.Series([run_id for run_id, _ in runs], dtype=pl.String)
    return [
        pl.DataFrame(
            [
                ids.gather(np.repeat(np.arange(len(runs)), heights)).alias("run_id"),
                points["metric"].cast(pl.String),
                points["step"].cast(pl.Int64),
                points["time"].cast(pl.Float64),
                points["timestamp"].cast(pl.Int64).cast(pl.Datetime("us", "UTC")),
                points["value"].cast(pl.Float64),
            ]
        )
    ]


def run_ids(parsed: list[tuple[Path, _Run]]) -> list[str]:
    """The id of each run read from a file: its own, else the file's; a run resumed into
    several folders gets `id@folder` for each."""
    ids = [run.run_id or shown(path.stem.removeprefix("run-")) for path, run in parsed]
    counts: dict[str, int] = {}
    for run_id in ids:
        counts[run_id] = counts.get(run_id, 0) + 1
    return [
        f"{run_id}@{shown(path.parent.name)}" if counts[run_id] > 1 else run_id
        for (path, _), run_id in zip(parsed, ids, strict=True)
    ]


def run_record(
    path: Path,
    run: _Run,
    run_id: str,
    project: str | None,
    group: str | None,
    job_type: str | None,
) -> RunRecord:
    """The record of a run read from `path`, with its (made unique) `run_id`."""
    problems: list[str] = []
    config = {k: v for k, v in _decoded(run.config, problems).items() if not k.startswith("_wandb")}
    summary = {
        k: v
        for k, v in _decoded(run.summary, problems).items()
        if not k.startswith("_") and _is_scalar(v)
    }
    for problem in dict.fromkeys(problems):
        warn(path, f"config or summary: {problem}")
    if run.start is not None and not is_time(run.start):
        warn(path, f"start time {run.start!r} is not a time; created_at left empty")
    runtime = run.runtime if run.runtime is not None else run.last_runtime
    return RunRecord(
        id=run_id,
        source=f"wandb:{shown(path.parent)}",
        name=run.name or run_id,
        project=run.project or project,
        group=run.group or group,
        job_type=run.job_type or job_type,
        state=_state(run, path),
        tags=list(run.tags),
        created_at=utc_from_seconds(run.start),
        runtime=runtime,
        config=config,
        summary=summary,
    )


def run_chunk(run_id: str, run: _Run, start: int = 0) -> pl.DataFrame:
    """The history of `run` from its `start`-th point, as a chunk."""
    if run.points is not None:
        points = run.points.slice(start)
        return chunk(
            run_id,
            points["metric"],
            points["step"],
            points["value"],
            time=points["time"],
            timestamp_us=points["timestamp"],
        )
    return chunk(
        run_id,
        run.metrics[start:],
        run.steps[start:],
        run.values[start:],
        time=run.times[start:],
        timestamp_us=run.stamps[start:],
    )


def _is_scalar(value: Any) -> bool:
    if isinstance(value, dict):
        return "_type" not in value
    return not isinstance(value, list)
