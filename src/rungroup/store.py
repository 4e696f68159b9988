"""The run store on disk: one folder per run, written by exactly one process.

Layout (documented in docs/store.md)::

    <store>/<project>/<run_id>/run.json       metadata, replaced atomically (temp file + rename)
    <store>/<project>/<run_id>/history.rgh    append-only binary history

A history file starts with an 8-byte header (`HISTORY_MAGIC`, which carries the format
version) and continues with records. Each record is framed as
``RECORD_MAGIC | payload length (u32) | crc32(payload) (u32) | payload`` so that a reader can
tell a record still being written (or torn by a crash) from a complete one, and can resync
after garbage. A payload holds the names of every metric the run has logged so far (so each
record can be read on its own, even when an earlier one is damaged), then its points as four
column arrays (step i64, wall-clock f64, metric index u32 into those names, value f64), all
little-endian.
"""

from __future__ import annotations

import functools
import json
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
META_FILE = "run.json"
HISTORY_FILE = "history.rgh"
HISTORY_MAGIC = b"RGHIST\x00\x01"
RECORD_MAGIC = b"RGRC"
_RECORD_HEADER = struct.Struct("<4sII")
_COUNT = struct.Struct("<I")
#: Bytes per stored point: step (8) + wall time (8) + metric index (4) + value (8).
POINT_BYTES = 28
#: A record larger than this is garbage, not data (a flush never writes one this big).
MAX_RECORD_BYTES = 1 << 30

_FORBIDDEN = re.compile(r"[/\\\x00]")


class StoreError(ValueError):
    """A name or path that the store refuses, or a run that already exists."""


def check_name(value: str, what: str) -> str:
    """Refuse names that would escape the store or hide from it (`..`, `/`, NUL, empty)."""
    if not isinstance(value, str):
        raise StoreError(f"{what} must be a string, not {type(value).__name__}")
    if not value or value.strip() != value:
        raise StoreError(f"{what} {value!r} is empty or has leading/trailing spaces")
    if value in (".", "..") or value.startswith("."):
        raise StoreError(f"{what} {value!r} may not start with '.'")
    if _FORBIDDEN.search(value):
        raise StoreError(f"{what} {value!r} may not contain '/', '\\\\' or NUL")
    if len(value) > 128:
        raise StoreError(f"{what} {value!r} is longer than 128 characters")
    return value


def run_dir(root: Path, project: str, run_id: str) -> Path:
    return root / check_name(project, "project") / check_name(run_id, "run id")


def write_json_atomically(path: Path, content: Mapping[str, Any]) -> None:
    """Write `content` so that readers see either the old file or the new one, never half."""
    data = json.dumps(content, indent=1, sort_keys=True, allow_nan=True).encode()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def encode_record(
    names: list[str],
    steps: Any,
    walls: Any,
    metric_indices: Any,
    values: Any,
) -> bytes:
    """One framed record; the column arguments are buffers (array.array) of equal length."""
    table = json.dumps(names).encode()
    count = len(values)
    payload = b"".join(
        (
            _COUNT.pack(len(table)),
            table,
            _COUNT.pack(count),
            bytes(steps),
            bytes(walls),
            bytes(metric_indices),
            bytes(values),
        )
    )
    return _RECORD_HEADER.pack(RECORD_MAGIC, len(payload), zlib.crc32(payload)) + payload


@dataclass
class RecordPoints:
    """The points of one record, as views into the file's bytes (no copy yet)."""

    steps: np.ndarray
    walls: np.ndarray
    #: positions in the history's `names` (already mapped from the record's own table)
    metric_indices: np.ndarray
    values: np.ndarray


@dataclass
class DecodedHistory:
    """The readable part of one history file; `problems` says what could not be read."""

    names: list[str] = field(default_factory=list)
    records: list[RecordPoints] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: bytes at the end that are not (yet) a complete record: a write in progress or a crash
    incomplete_tail: int = 0

    def __len__(self) -> int:
        return sum(int(r.values.shape[0]) for r in self.records)

    def column(self, name: str) -> np.ndarray:
        """One column over all records, concatenated (a copy)."""
        parts = [getattr(r, name) for r in self.records]
        if parts:
            return np.concatenate(parts)
        dtype = {"steps": np.int64, "metric_indices": np.uint32}.get(name, np.float64)
        return np.empty(0, dtype)

    def last_values(self) -> dict[str, float]:
        """The last logged value of each metric, in logging order (W&B's default summary)."""
        found: dict[int, float] = {}
        for record in reversed(self.records):
            indices, values = record.metric_indices, record.values
            end = indices.shape[0]
            window = 64
            # The latest points hold the last value of nearly every metric: look at a
            # growing window from the end instead of sorting the whole record.
            while end > 0 and len(found) < len(self.names):
                begin = max(0, end - window)
                tail = indices[begin:end][::-1]
                unique, first = np.unique(tail, return_index=True)
                tail_values = values[begin:end][::-1]
                for index, position in zip(unique.tolist(), first.tolist(), strict=True):
                    found.setdefault(index, float(tail_values[position]))
                end, window = begin, window * 8
            if len(found) == len(self.names):
                break
        return {self.names[i]: v for i, v in found.items()}


def decode_history(data: bytes, label: str = "history", *, offset: int = 0) -> DecodedHistory:
    """Decode a history file. Never raises on bad content: problems are reported.

    With `offset` 0, `data` is the whole file, header included. Otherwise `data` holds the
    file's bytes from `offset` on, which must be where an earlier read stopped (a record
    boundary): that is how a live reader reads only what was appended. The returned records
    are views into `data`, which must stay alive while they are used.
    """
    decoded = DecodedHistory()
    problems = decoded.problems
    if not data:
        return decoded
    if offset:
        _decode_records(data, label, offset, 0, decoded)
        return decoded
    if len(data) < len(HISTORY_MAGIC):
        if HISTORY_MAGIC.startswith(data):
            decoded.incomplete_tail = len(data)
        else:
            problems.append(f"{label}: not a rungroup history file (bad header)")
        return decoded
    header = data[: len(HISTORY_MAGIC)]
    if header != HISTORY_MAGIC:
        if header[:6] == HISTORY_MAGIC[:6]:
            version = int.from_bytes(header[6:], "big")
            problems.append(
                f"{label}: history format version {version} is not supported "
                f"(this rungroup reads version {FORMAT_VERSION}); upgrade rungroup"
            )
        else:
            problems.append(f"{label}: not a rungroup history file (bad header)")
        return decoded
    _decode_records(data, label, 0, len(HISTORY_MAGIC), decoded)
    return decoded


def _decode_records(
    data: bytes, label: str, offset: int, position: int, decoded: DecodedHistory
) -> None:
    """Append the records of `data` from `position` on to `decoded`; byte 0 of `data` is the
    file's byte `offset` (for messages)."""
    problems = decoded.problems
    names = decoded.names
    codes: dict[str, int] = {}
    # consecutive records nearly always carry the same name table: map it once
    last_table: tuple[str, ...] | None = None
    lookup: np.ndarray | None = None
    size = 0
    undefined = 0
    end = len(data)
    view = memoryview(data)
    while position < end:
        if end - position < _RECORD_HEADER.size:
            decoded.incomplete_tail = end - position
            break
        magic, length, checksum = _RECORD_HEADER.unpack_from(data, position)
        if magic != RECORD_MAGIC or length > MAX_RECORD_BYTES:
            resync = data.find(RECORD_MAGIC, position + 1)
            skipped_to = resync if resync >= 0 else end
            problems.append(
                f"{label}: {skipped_to - position} bytes of garbage at byte {offset + position} "
                "skipped"
            )
            position = skipped_to
            continue
        start = position + _RECORD_HEADER.size
        if start + length > end:
            decoded.incomplete_tail = end - position
            break
        payload = view[start : start + length]
        if zlib.crc32(payload) != checksum:
            problems.append(
                f"{label}: record at byte {offset + position} fails its checksum; skipped"
            )
            resync = data.find(RECORD_MAGIC, position + 1)
            position = resync if resync >= 0 else end
            continue
        parsed = _parse_payload(payload)
        if isinstance(parsed, str):
            problems.append(f"{label}: record at byte {offset + position} {parsed}; skipped")
        else:
            table, points_offset, count = parsed
            if table is not last_table:
                positions = [codes.setdefault(n, len(codes)) for n in table]
                if len(codes) > len(names):
                    names.extend(list(codes)[len(names) :])
                identity = positions == list(range(len(positions)))
                # the usual case maps each index to itself
                last_table, lookup = table, None if identity else np.asarray(positions, np.uint32)
                size = len(positions)
            if count:
                record, dropped = _record_points(data, start + points_offset, count, size, lookup)
                undefined += dropped
                if record.values.shape[0]:
                    decoded.records.append(record)
        position = start + length
    if undefined:
        problems.append(f"{label}: {undefined} points name an undefined metric; skipped")


def _record_points(
    data: bytes, offset: int, count: int, size: int, lookup: np.ndarray | None
) -> tuple[RecordPoints, int]:
    """The record's columns; `size` names in its table, `lookup` maps them to the history's
    (None: the same positions)."""
    steps = np.frombuffer(data, np.int64, count, offset)
    walls = np.frombuffer(data, np.float64, count, offset + 8 * count)
    indices = np.frombuffer(data, np.uint32, count, offset + 16 * count)
    values = np.frombuffer(data, np.float64, count, offset + 20 * count)
    dropped = 0
    if int(indices.max()) >= size:
        valid = indices < size
        dropped = count - int(valid.sum())
        steps, walls, indices, values = steps[valid], walls[valid], indices[valid], values[valid]
    if lookup is not None:
        indices = lookup[indices]
    return RecordPoints(steps, walls, indices, values), dropped


def _name_table(raw: bytes) -> tuple[str, ...] | str:
    """A record's metric names, or what is wrong with them. The same table repeats in every
    record of a run: small tables are parsed once (large ones would fill the cache)."""
    return _cached_name_table(raw) if len(raw) <= 2048 else _parse_name_table(raw)


def _parse_name_table(raw: bytes) -> tuple[str, ...] | str:
    try:
        table = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "has an unreadable name table"
    if not isinstance(table, list) or not all(isinstance(n, str) for n in table):
        return "has a name table that is not a list of strings"
    return tuple(table)


_cached_name_table = functools.lru_cache(maxsize=4096)(_parse_name_table)


def _parse_payload(payload: memoryview) -> tuple[tuple[str, ...], int, int] | str:
    if len(payload) < 8:
        return "is too short"
    (names_length,) = _COUNT.unpack_from(payload, 0)
    if 4 + names_length + 4 > len(payload):
        return "has a name table longer than itself"
    table = _name_table(bytes(payload[4 : 4 + names_length]))
    if isinstance(table, str):
        return table
    (count,) = _COUNT.unpack_from(payload, 4 + names_length)
    points_offset = 8 + names_length
    if points_offset + count * POINT_BYTES != len(payload):
        return f"holds {len(payload) - points_offset} bytes for {count} points"
    return table, points_offset, count


def read_meta(path: Path) -> dict[str, Any]:
    """Read run.json; raises ValueError (with the file named) when it is not usable."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror})") from error
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(meta).__name__}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path}: run format version {version!r} is not supported "
            f"(this rungroup reads version {FORMAT_VERSION})"
        )
    if not isinstance(meta.get("id"), str) or not meta["id"]:
        raise ValueError(f"{path}: has no run id")
    return meta
