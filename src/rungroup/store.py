"""The run store on disk: one folder per run, written by exactly one process.

Layout (documented in docs/store.md)::

    <store>/<project>/<run_id>/run.json       metadata, replaced atomically (temp file + rename)
    <store>/<project>/<run_id>/history.rgh    append-only binary history

A history file starts with an 8-byte header (`HISTORY_MAGIC`, which carries the format
version) and continues with records. A version-2 record is framed as
``RECORD_MAGIC | payload length (u32) | sequence (u32) | crc32(payload) (u32) |
crc32(the 16 bytes before)`` then the payload: the header checks itself, so a damaged length
is told from a record still being written, and a reader that lost its place trusts a candidate
record only once both checksums hold. Version-1 files (``"RGRC" | length | crc32(payload)``,
the length unchecked) are still read. A payload holds the names of every metric the run has
logged so far (so each record can be read on its own, even when an earlier one is damaged),
then its points as four column arrays (step i64, wall-clock f64, metric index u32 into those
names, value f64), all little-endian.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported by the readers only: logging a run does not need it
    import numpy as np

#: the version of run.json
FORMAT_VERSION = 1
#: the version of history.rgh that this rungroup writes; it reads `HISTORY_VERSIONS`
HISTORY_VERSION = 2
HISTORY_VERSIONS = (1, 2)
META_FILE = "run.json"
HISTORY_FILE = "history.rgh"
HISTORY_MAGIC = b"RGHIST\x00\x02"
#: A record's marker. Its first byte is not ASCII, so it never occurs in a name table (JSON
#: with non-ASCII characters escaped): a metric name cannot imitate a record.
RECORD_MAGIC = b"\x89RGR"
_RECORD_HEADER = struct.Struct("<4sIIII")
_HEADER_CHECKED = 16  # the header bytes that its own checksum covers
#: the sequence number of a record that has none (never taken for a copy or out of order)
UNNUMBERED = 0xFFFFFFFF
#: version 1, read only: ``"RGRC" | length | crc32(payload)``
HISTORY_MAGIC_V1 = b"RGHIST\x00\x01"
RECORD_MAGIC_V1 = b"RGRC"
_RECORD_HEADER_V1 = struct.Struct("<4sII")
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


def encode_payload(
    names: list[str], steps: Any, walls: Any, metric_indices: Any, values: Any
) -> bytes:
    """A record's payload; the column arguments are buffers (array.array) of equal length."""
    table = json.dumps(names).encode()
    return b"".join(
        (
            _COUNT.pack(len(table)),
            table,
            _COUNT.pack(len(values)),
            bytes(steps),
            bytes(walls),
            bytes(metric_indices),
            bytes(values),
        )
    )


def encode_record(
    names: list[str],
    steps: Any,
    walls: Any,
    metric_indices: Any,
    values: Any,
    *,
    sequence: int | None = None,
) -> bytes:
    """One framed record. `sequence` numbers a run's records from 0, so that a reader can
    tell a copy of a record and records out of order; None leaves the record unnumbered."""
    payload = encode_payload(names, steps, walls, metric_indices, values)
    number = UNNUMBERED if sequence is None else sequence % UNNUMBERED
    checked = struct.pack("<4sIII", RECORD_MAGIC, len(payload), number, zlib.crc32(payload))
    return checked + _COUNT.pack(zlib.crc32(checked)) + payload


@dataclass
class RecordPoints:
    """The points of one record, as views into the file's bytes (no copy yet)."""

    steps: np.ndarray
    walls: np.ndarray
    #: positions in the history's `names` (already mapped from the record's own table)
    metric_indices: np.ndarray
    values: np.ndarray
    #: the record's sequence number (version 2; 0 in version 1)
    sequence: int = 0


@dataclass
class DecodedHistory:
    """The readable part of one history file; `problems` says what could not be read."""

    names: list[str] = field(default_factory=list)
    records: list[RecordPoints] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: bytes at the end that are not (yet) a complete record: a write in progress or a crash
    incomplete_tail: int = 0
    #: the history format version (0: not known, as for an empty file)
    version: int = 0

    def __len__(self) -> int:
        return sum(int(r.values.shape[0]) for r in self.records)

    def column(self, name: str) -> np.ndarray:
        """One column over all records, concatenated (a copy)."""
        import numpy as np

        parts = [getattr(r, name) for r in self.records]
        if parts:
            return np.concatenate(parts)
        dtype = {"steps": np.int64, "metric_indices": np.uint32}.get(name, np.float64)
        return np.empty(0, dtype)

    def last_values(self) -> dict[str, float]:
        """The last logged value of each metric, in logging order (W&B's default summary)."""
        import numpy as np

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


def decode_history(
    data: bytes, label: str = "history", *, offset: int = 0, version: int = 0
) -> DecodedHistory:
    """Decode a history file. Never raises on bad content: problems are reported.

    With `offset` 0, `data` is the whole file, header included. Otherwise `data` holds the
    file's bytes from `offset` on, which must be where an earlier read stopped (a record
    boundary): that is how a live reader reads only what was appended. Its format `version`
    is then the one the first read returned, or found from the record markers when 0. The
    returned records are views into `data`, which must stay alive while they are used.
    """
    decoded = DecodedHistory()
    problems = decoded.problems
    if not data:
        decoded.version = version
        return decoded
    if offset:
        decoded.version = version or _version_of_records(data)
        _Decoder(data, label, offset, decoded).run(0)
        return decoded
    size = len(HISTORY_MAGIC)
    header = data[:size]
    if header == HISTORY_MAGIC:
        decoded.version = 2
    elif header == HISTORY_MAGIC_V1:
        decoded.version = 1
    elif len(data) < size and (HISTORY_MAGIC.startswith(data) or HISTORY_MAGIC_V1.startswith(data)):
        decoded.incomplete_tail = len(data)  # the header is being written
        return decoded
    elif header[:6] == HISTORY_MAGIC[:6] and len(header) == size:
        problems.append(
            f"{label}: history format version {int.from_bytes(header[6:], 'big')} is not "
            f"supported (this rungroup reads versions {', '.join(map(str, HISTORY_VERSIONS))}); "
            "upgrade rungroup"
        )
        return decoded
    else:
        problems.append(f"{label}: not a rungroup history file (bad header)")
        return decoded
    _Decoder(data, label, 0, decoded).run(size)
    return decoded


def _version_of_records(data: bytes) -> int:
    """The version whose record marker comes first in `data` (2 when neither is there)."""
    new, old = data.find(RECORD_MAGIC), data.find(RECORD_MAGIC_V1)
    return 1 if old >= 0 and (new < 0 or old < new) else 2


# what `_Decoder.check` finds at a position
_VALID, _TORN, _BAD_MARKER, _BAD_HEADER, _BAD_CHECKSUM = range(5)


class _Decoder:
    """Reads the records of one history; byte 0 of `data` is the file's byte `offset`.

    At each position a record is either valid (both checksums hold), torn (it may still be
    being written: its header is whole and sound, or cut short, and it runs past the end) or
    bad. Past a bad one, reading resumes at the next position that holds a valid record: a
    candidate is trusted only once its checksums hold, so marker bytes inside a payload are
    not taken for a record. A torn record ends the readable part only when no valid record
    follows it; otherwise it is damage too.
    """

    def __init__(self, data: bytes, label: str, offset: int, decoded: DecodedHistory) -> None:
        self.data = data
        self.label = label
        self.offset = offset
        self.decoded = decoded
        if decoded.version == 1:
            self.magic, self.header_size = RECORD_MAGIC_V1, _RECORD_HEADER_V1.size
        else:
            self.magic, self.header_size = RECORD_MAGIC, _RECORD_HEADER.size
        # consecutive records nearly always carry the same name table: map it once
        self.codes: dict[str, int] = {}
        self.last_table: tuple[str, ...] | None = None
        #: Name tables parsed so far, by their bytes: the same table repeats in every record.
        self.tables: dict[bytes, tuple[str, ...] | str] = {}
        self.lookup: np.ndarray | None = None
        self.size = 0
        self.undefined = 0
        self.checksums: dict[int, tuple[int, int]] = {}  # sequence -> (checksum, byte)
        self.last_sequence = -1
        self.out_of_order = 0

    def check(self, position: int, candidate: bool = False) -> tuple[int, int, int, int]:
        """(what is at `position`, payload length, sequence, payload checksum). A `candidate`
        found by a search must also have a payload of consistent sizes (cheap, before its
        checksum), so that a search through garbage stays linear."""
        data, end = self.data, len(self.data)
        left = end - position
        if left < self.header_size:
            cut = data[position : position + len(self.magic)]
            return (_TORN if self.magic.startswith(cut) else _BAD_MARKER), 0, 0, 0
        if self.decoded.version == 1:
            magic, length, checksum = _RECORD_HEADER_V1.unpack_from(data, position)
            sequence = 0
            if magic != self.magic or length > MAX_RECORD_BYTES:
                return _BAD_MARKER, 0, 0, 0
        else:
            magic, length, sequence, checksum, header_checksum = _RECORD_HEADER.unpack_from(
                data, position
            )
            if magic != self.magic:
                return _BAD_MARKER, 0, 0, 0
            checked = memoryview(data)[position : position + _HEADER_CHECKED]
            if zlib.crc32(checked) != header_checksum:
                return _BAD_HEADER, 0, 0, 0
        start = position + self.header_size
        if start + length > end:
            return _TORN, length, sequence, checksum
        if candidate and not _consistent_sizes(data, start, length):
            return _BAD_CHECKSUM, length, sequence, checksum
        if zlib.crc32(memoryview(data)[start : start + length]) != checksum:
            return _BAD_CHECKSUM, length, sequence, checksum
        return _VALID, length, sequence, checksum

    def next_record(self, position: int) -> tuple[int | None, int | None]:
        """The first position from `position` on that holds a valid record, and the first
        that holds a torn one whose header is whole and checks (a search, reading only at
        marker bytes). A cut header or a version-1 header cannot be checked: bytes of a
        damaged record would pass for one, so they are not taken for a torn record here."""
        data, magic = self.data, self.magic
        torn = None
        found = data.find(magic, position)
        while found >= 0:
            what = self.check(found, candidate=True)[0]
            if what == _VALID:
                return found, torn
            if (
                what == _TORN
                and torn is None
                and self.decoded.version == 2
                and len(data) - found >= self.header_size
            ):
                torn = found
            found = data.find(magic, found + 1)
        return None, torn

    def run(self, position: int) -> None:
        end, decoded = len(self.data), self.decoded
        while position < end:
            what, length, sequence, checksum = self.check(position)
            if what == _VALID:
                start = position + self.header_size
                self.record(position, start, length, sequence, checksum)
                position = start + length
                continue
            valid, torn = self.next_record(position + 1)
            if what == _TORN and valid is None:
                decoded.incomplete_tail = end - position
                break
            stop = valid if valid is not None else torn if torn is not None else end
            self.skipped(what, position, stop, length)
            if valid is None:
                if torn is not None:
                    decoded.incomplete_tail = end - torn
                break
            position = valid
        if self.undefined:
            decoded.problems.append(
                f"{self.label}: {self.undefined} points name an undefined metric; skipped"
            )
        if self.out_of_order:
            decoded.records.sort(key=lambda r: r.sequence)
            decoded.problems.append(
                f"{self.label}: {self.out_of_order} records are out of order; "
                "loaded in the order they were written"
            )

    def skipped(self, what: int, position: int, stop: int, length: int) -> None:
        at = self.offset + position
        count = stop - position
        if what == _BAD_MARKER and self.data.count(0, position, stop) == count:
            problem = f"{count} zero bytes at byte {at} (as a crash leaves on some file systems)"
        elif what == _BAD_MARKER:
            problem = f"{count} bytes of garbage at byte {at}"
        elif what == _BAD_HEADER:
            problem = f"record at byte {at} has a damaged header (marker, length or checksum)"
        elif what == _BAD_CHECKSUM:
            problem = f"record at byte {at} fails its checksum"
        else:
            problem = (
                f"record at byte {at} claims {length} bytes, more than the file holds, "
                "yet intact records follow"
            )
        if stop < len(self.data):
            where = f"{count} bytes skipped; reading resumes at byte {self.offset + stop}"
        else:
            where = f"{count} bytes skipped, to the end of the file"
        self.decoded.problems.append(f"{self.label}: {problem}; {where}")

    def record(self, position: int, start: int, length: int, sequence: int, checksum: int) -> None:
        import numpy as np

        decoded = self.decoded
        at = self.offset + position
        if decoded.version == 2 and sequence != UNNUMBERED:
            earlier = self.checksums.get(sequence)
            if earlier is not None and earlier[0] == checksum:
                decoded.problems.append(
                    f"{self.label}: record at byte {at} repeats the record at byte {earlier[1]} "
                    "(a copy); skipped"
                )
                return
            self.checksums.setdefault(sequence, (checksum, at))
            if sequence < self.last_sequence:
                self.out_of_order += 1
            self.last_sequence = max(self.last_sequence, sequence)
        parsed = _parse_payload(memoryview(self.data)[start : start + length], self.tables)
        if isinstance(parsed, str):
            decoded.problems.append(f"{self.label}: record at byte {at} {parsed}; skipped")
            return
        table, points_offset, count = parsed
        if table is not self.last_table:
            positions = [self.codes.setdefault(n, len(self.codes)) for n in table]
            names = decoded.names
            if len(self.codes) > len(names):
                names.extend(list(self.codes)[len(names) :])
            identity = positions == list(range(len(positions)))
            # the usual case maps each index to itself
            self.last_table = table
            self.lookup = None if identity else np.asarray(positions, np.uint32)
            self.size = len(positions)
        if count:
            points, dropped = _record_points(
                self.data, start + points_offset, count, self.size, self.lookup
            )
            self.undefined += dropped
            if points.values.shape[0]:
                points.sequence = sequence
                decoded.records.append(points)


def _consistent_sizes(data: bytes, start: int, length: int) -> bool:
    """Whether a payload's name table and point count add up to its length."""
    if length < 8:
        return False
    (names_length,) = _COUNT.unpack_from(data, start)
    if names_length > length - 8:
        return False
    (count,) = _COUNT.unpack_from(data, start + 4 + names_length)
    return bool(8 + names_length + count * POINT_BYTES == length)


def _record_points(
    data: bytes, offset: int, count: int, size: int, lookup: np.ndarray | None
) -> tuple[RecordPoints, int]:
    """The record's columns; `size` names in its table, `lookup` maps them to the history's
    (None: the same positions)."""
    import numpy as np

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


def _name_table(raw: bytes, tables: dict[bytes, tuple[str, ...] | str]) -> tuple[str, ...] | str:
    """A record's metric names, or what is wrong with them. The same table repeats in every
    record of a run: small tables are parsed once per file (large ones would fill `tables`)."""
    if len(raw) > 2048:
        return _parse_name_table(raw)
    table = tables.get(raw)
    if table is None:
        table = tables[raw] = _parse_name_table(raw)
    return table


def _parse_name_table(raw: bytes) -> tuple[str, ...] | str:
    try:
        table = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "has an unreadable name table"
    if not isinstance(table, list) or not all(isinstance(n, str) for n in table):
        return "has a name table that is not a list of strings"
    return tuple(table)


def _parse_payload(
    payload: memoryview, tables: dict[bytes, tuple[str, ...] | str]
) -> tuple[tuple[str, ...], int, int] | str:
    if len(payload) < 8:
        return "is too short"
    (names_length,) = _COUNT.unpack_from(payload, 0)
    if 4 + names_length + 4 > len(payload):
        return "has a name table longer than itself"
    table = _name_table(bytes(payload[4 : 4 + names_length]), tables)
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
