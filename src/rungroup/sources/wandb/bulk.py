"""A W&B run file decoded in bulk: the common case at millions of points a second.

wandb writes every `log` as three records: a summary record repeating the row, the
HistoryRecord itself (one item per key: `key` or one `nested_key`, and `value_json`), and a
summary of its own `_runtime`. Decoded record by record (`offline.apply_records`) that is a
Python object per record, item and value. Here a file is framed once (the only loop over all
records in Python), and the items of all its history and summary records are read in
lockstep with numpy: the k-th item of every record at once. The values are parsed by Polars
(correctly rounded, as Python's `float` is), and whether a summary record only repeats the
history row after it (`offline._auto_summary`) is decided by comparing item bytes in bulk.

The result is the `_Run` the general decoder makes, bit for bit. Whatever this path cannot
prove it reads the same way (a damaged or truncated record, fragments out of order, a step
field, a history key in several parts, a `_step`, `_runtime` or `_timestamp` that is not a
plain number, anything the general decoder would warn about in a history row) makes
`read_run` return None, and the file is read the general way, which reports it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

from rungroup.sources.protoreader import spans
from rungroup.sources.runrecords import MAX_SECONDS, MIN_SECONDS, warn

if TYPE_CHECKING:
    from rungroup.sources.wandb.offline import _Run

__all__ = ["read_run"]

_HEADER = b":W&B"
_HEADER_SIZE = 7
_BLOCK = 32768
_RECORD_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_FRAME = struct.Struct("<IHB")
#: zlib's CRC-32 of each type byte, where a record's checksum starts
_TYPE_CRC = [zlib.crc32(bytes([kind])) for kind in range(256)]
#: zero bytes after the records, so that reads a little past a record's end stay in bounds
_PAD = 1024
#: Record fields history = 2 and summary = 3 (length-delimited: tags 0x12, 0x1A)
_HISTORY_TAG, _SUMMARY_TAG = 0x12, 0x1A
#: longer values are not plain numbers; they are decoded one by one
_MAX_VALUE = 40
#: longer items are compared as the general decoder compares them, one by one
_MAX_ITEM = 512
#: steps beyond this are not exact in a float64; the general decoder handles them
_MAX_EXACT = 2.0**53
#: JSON numbers, and the three words Python's json writes for NaN and infinities: what both
#: the general decoder (`offline._json`, then float) and Polars read as the same double
_NUMBER = r"^(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|-?Infinity)$"
_STEP, _RUNTIME, _TIMESTAMP = "_step", "_runtime", "_timestamp"
_MIX = np.uint64(0x9E3779B97F4A7C15)

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Bytes = npt.NDArray[np.uint8]


class _UnsureError(Exception):
    """The file is not one this path reads the same way as the general decoder."""


@dataclass
class _Items:
    """Every item of the history and summary records, ordered by record then position."""

    record: Ints  # index into the file's records
    header: Ints  # bytes of the item's field tag and length
    start: Ints  # the item's content (after its tag and length) ...
    end: Ints  # ... up to here
    key_start: Ints
    key_length: Ints
    value_start: Ints
    value_length: Ints
    key_parts: Ints  # the first is `key_start`; history keys have one


def read_run(data: bytes, path: Path) -> _Run | None:
    """The `offline._Run` of a whole run file's bytes, or None to decode it the general way
    (which reports what is wrong with it, if anything)."""
    from rungroup.sources.wandb import offline

    if len(data) < _HEADER_SIZE or data[:4] != _HEADER:
        return None
    framed = _frame(data)
    if framed is None:
        return None
    payload, record_ends = framed
    try:
        run, warnings = _decode(payload, record_ends, offline)
    except _UnsureError:
        return None
    for message in warnings:
        warn(path, message)
    return run


def _frame(data: bytes) -> tuple[bytes, list[int]] | None:
    """The file's records joined, and where each ends; None unless every record is whole,
    in order and matches its checksum."""
    size = len(data)
    view = memoryview(data)
    parts: list[memoryview] = []
    ends: list[int] = []
    total = 0
    inside = False  # between a FIRST fragment and its LAST
    pos = _HEADER_SIZE
    unpack = _FRAME.unpack_from
    crc = zlib.crc32
    type_crc = _TYPE_CRC
    while pos < size:
        left = _BLOCK - pos % _BLOCK
        if left < _RECORD_HEADER:
            pos += left  # padding
            continue
        if pos + _RECORD_HEADER > size:
            return None
        checksum, length, kind = unpack(data, pos)
        start = pos + _RECORD_HEADER
        end = start + length
        if kind == 0 and length == 0 and checksum == 0:
            if inside:
                return None
            pos += left  # the zero-filled rest of a block
            continue
        if end > pos + left or end > size:
            return None
        chunk = view[start:end]
        if crc(chunk, type_crc[kind]) != checksum:
            return None
        pos = end
        if kind in (_FULL, _FIRST):
            if inside:
                return None
            inside = kind == _FIRST
        elif kind in (_MIDDLE, _LAST):
            if not inside:
                return None
            inside = kind == _MIDDLE
        else:
            return None
        parts.append(chunk)
        total += length
        if not inside:
            ends.append(total)
    if inside:
        return None
    return b"".join(parts), ends


def _varint(buf: Bytes, pos: Ints) -> tuple[Ints, Ints, Bools]:
    """(value, position after it, whether it ends within 5 bytes) of the varint at each of
    `pos`."""
    value = np.zeros(pos.shape, np.int64)
    after = pos.copy()
    going = np.ones(pos.shape, np.bool_)
    for i in range(5):
        byte = buf[after].astype(np.int64)
        value |= np.where(going, (byte & 0x7F) << (7 * i), 0)
        after += going
        going &= byte >= 0x80
    return value, after, ~going


def _read_items(
    buf: Bytes, start: Ints, end: Ints, rows: Bools
) -> tuple[_Items, Bools, Ints, Bools]:
    """The items (field 1: `key` or one `nested_key`, then `value_json`) of the messages at
    `start`..`end`; which messages hold anything else (read no further); and for history
    `rows` the step of their HistoryStep field (2), where they have one with a step."""
    last = buf.size - 16
    cursor = start.copy()
    odd = np.zeros(start.shape, np.bool_)
    step = np.zeros(start.shape, np.int64)
    has_step = np.zeros(start.shape, np.bool_)
    found: list[tuple[Ints, ...]] = []
    active = np.nonzero(cursor < end)[0]
    while active.size:
        at = np.minimum(cursor[active], last)
        step_field = rows[active] & (buf[at] == 0x12)
        if step_field.any():
            _read_step(buf, active[step_field], cursor, end, odd, step, has_step)
            active = active[cursor[active] < end[active]]
            continue
        length, content, ok = _varint(buf, np.minimum(at + 1, last))
        item_end = content + length
        good = ok & (buf[at] == 0x0A) & (item_end <= end[active]) & (content + 2 <= item_end)
        content = np.minimum(content, last)
        key_length = buf[content + 1].astype(np.int64)
        key_end = np.minimum(content + 2 + key_length, last)
        good &= ((buf[content] == 0x0A) | (buf[content] == 0x12)) & (key_length < 0x80)
        # more `nested_key` parts ("_wandb", "runtime"): passed over, the first one named
        parts = np.ones(active.size, np.int64)
        for _ in range(8):
            more = good & (buf[key_end] == 0x12) & (key_end < item_end)
            if not more.any():
                break
            part = buf[key_end + 1].astype(np.int64)
            good &= ~more | (part < 0x80)
            key_end = np.where(more, np.minimum(key_end + 2 + part, last), key_end)
            parts += more
        good &= (buf[key_end] == 0x82) & (buf[key_end + 1] == 0x01)
        value_length, value_start, ok = _varint(buf, key_end + 2)
        good &= ok & (value_start + value_length == item_end)
        bad = active[~good]
        odd[bad] = True
        cursor[bad] = end[bad]
        kept = active[good]
        cursor[kept] = item_end[good]
        found.append(
            (
                kept,
                (content - at)[good],
                content[good],
                item_end[good],
                content[good] + 2,
                key_length[good],
                value_start[good],
                value_length[good],
                parts[good],
            )
        )
        active = kept[cursor[kept] < end[kept]]
    columns = [np.concatenate(column) for column in zip(*found, strict=True)] if found else []
    if not columns:
        columns = [np.zeros(0, np.int64) for _ in range(9)]
    order = np.lexsort((columns[2], columns[0]))  # by message, then position
    return _Items(*(column[order] for column in columns)), odd, step, has_step


def _read_step(
    buf: Bytes, which: Ints, cursor: Ints, end: Ints, odd: Bools, step: Ints, has_step: Bools
) -> None:
    """Read the HistoryStep field (`num = 1`) at `cursor` of messages `which`: wandb leaves it
    empty, or sets the step it was given. Anything else in it is odd."""
    at = cursor[which]
    length = buf[at + 1].astype(np.int64)
    empty = length == 0
    value, after, ok = _varint(buf, at + 3)
    good = empty | ((length < 0x80) & (buf[at + 2] == 0x08) & ok & (after == at + 2 + length))
    good &= at + 2 + length <= end[which]
    with_step = which[good & ~empty]
    step[with_step] = value[good & ~empty]  # the last one counts, as in the general decoder
    has_step[with_step] = True
    odd[which[~good]] = True
    cursor[which] = np.where(good, at + 2 + length, end[which])


def _gather(buf: Bytes, start: Ints, length: Ints) -> Bytes:
    """The bytes at each of `start` (`length` of them) as the rows of a zero-padded matrix
    whose width is a multiple of 8."""
    width = max(-(-int(length.max()) // 8) * 8 if length.size else 8, 8)
    windows = np.lib.stride_tricks.sliding_window_view(buf, width)
    matrix: Bytes = windows[np.minimum(start, windows.shape[0] - 1)]
    matrix[np.arange(width)[None, :] >= length[:, None]] = 0
    return matrix


def _row_hash(matrix: Bytes, length: Ints) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each row's bytes and length (equal rows, equal hashes)."""
    words = np.ascontiguousarray(matrix).view(np.uint64)
    hashed = length.astype(np.uint64)
    with np.errstate(over="ignore"):
        for column in range(words.shape[1]):
            hashed = (hashed ^ words[:, column]) * _MIX
            hashed ^= hashed >> np.uint64(29)
    return hashed


def _keys(buf: Bytes, items: _Items) -> tuple[Ints, list[bytes]]:
    """Each item's key as an index into the distinct keys (their bytes)."""
    if items.record.size == 0:
        return np.zeros(0, np.int64), []
    matrix = _gather(buf, items.key_start, items.key_length)
    within = np.arange(matrix.shape[1])[None, :] < items.key_length[:, None]
    if (matrix[within] == 0).any():
        raise _UnsureError  # a zero byte in a key: the hash would not tell it from the padding
    hashed = _row_hash(matrix, items.key_length)
    _, first, inverse = np.unique(hashed, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if not (matrix == matrix[first[inverse]]).all():
        raise _UnsureError  # two keys with one hash
    raw = [bytes(buf[items.key_start[i] : items.key_start[i] + items.key_length[i]]) for i in first]
    return inverse.astype(np.int64), raw


def _plain_numbers(buf: Bytes, start: Ints, length: Ints) -> tuple[npt.NDArray[np.float64], Bools]:
    """The values that are plain JSON numbers, as the general decoder reads them
    (`offline._json`, then float: one without '.', 'e' or 'E' goes through Python's int, so
    `-0` is 0), and which are."""
    matrix = _gather(buf, start, length)
    rows = matrix.view(f"S{matrix.shape[1]}").ravel()
    text = pl.Series(rows).cast(pl.String, strict=False)
    frame = pl.DataFrame({"text": text}).select(
        plain=pl.col("text").str.contains(_NUMBER).fill_null(False),
        number=pl.col("text").cast(pl.Float64, strict=False).fill_null(np.nan),
    )
    plain = frame["plain"].to_numpy()
    number = frame["number"].to_numpy()
    integer = ~((matrix == ord(".")) | (matrix == ord("e")) | (matrix == ord("E"))).any(axis=1)
    number = np.where(integer, number + 0.0, number)
    return np.where(plain, number, np.nan), plain


def _decode(payload: bytes, record_ends: list[int], general: object) -> tuple[_Run, list[str]]:
    buf: Bytes = np.frombuffer(payload + bytes(_PAD), np.uint8)
    ends = np.asarray(record_ends, np.int64)
    starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
    numbered = buf[starts] == 0x08  # `num = 1` first, as wandb writes it
    _, after_num, ok = _varint(buf, starts + 1)
    tag_at = np.where(numbered & ok, after_num, starts)
    tag = buf[np.minimum(tag_at, buf.size - 1)]
    ours = ((tag == _HISTORY_TAG) | (tag == _SUMMARY_TAG)) & (tag_at < ends)
    length, content, ok = _varint(buf, np.minimum(tag_at + 1, buf.size - 8))
    if not (ok[ours] & (content[ours] + length[ours] == ends[ours])).all():
        raise _UnsureError  # a history or summary record with more fields after it
    history = np.nonzero(ours & (tag == _HISTORY_TAG))[0]
    summary = np.nonzero(ours & (tag == _SUMMARY_TAG))[0]
    held = np.concatenate((history, summary))
    rows = np.arange(held.size) < history.size
    items, odd, field_step, has_field_step = _read_items(buf, content[held], ends[held], rows)
    if odd[: history.size].any():
        raise _UnsureError  # a history record with a key in several parts, or more
    items.record = held[items.record]
    key_of, key_bytes = _keys(buf, items)
    keys = [k.decode("utf-8", "replace") for k in key_bytes]
    in_history = np.isin(items.record, history)
    if (items.key_parts[in_history] > 1).any():
        raise _UnsureError  # a history key in several parts
    # only history values are needed as numbers (summary items are compared as bytes)
    values = np.full(items.record.size, np.nan)
    plain = np.zeros(items.record.size, np.bool_)
    short = np.nonzero(in_history & (items.value_length <= _MAX_VALUE))[0]
    if short.size:
        values[short], plain[short] = _plain_numbers(
            buf, items.value_start[short], items.value_length[short]
        )

    run: _Run = general._Run()  # type: ignore[attr-defined]
    given = (field_step[: history.size], has_field_step[: history.size])
    points = _history_points(
        buf, items, in_history, given, key_of, keys, values, plain, run, general
    )
    summary_odd = np.zeros(ends.size, np.bool_)
    summary_odd[summary] = odd[history.size :]
    warnings = _apply_in_order(
        payload, buf, items, history, summary, summary_odd, key_of, key_bytes, keys,
        content, starts, ends, ours, run, general,
    )  # fmt: skip
    run.points = points
    return run, warnings


def _history_points(
    buf: Bytes,
    items: _Items,
    in_history: Bools,
    given: tuple[Ints, Bools],
    key_of: Ints,
    keys: list[str],
    values: npt.NDArray[np.float64],
    plain: Bools,
    run: _Run,
    general: object,
) -> pl.DataFrame:
    """The history rows as points (metric, step, time, timestamp, value) in the order the
    general decoder appends them; `run.last_runtime` set. `given`: each history record's
    step from its HistoryStep field, and whether it has one (it comes before `_step`)."""
    where = np.nonzero(in_history)[0]
    key = key_of[where]
    value = values[where]
    is_plain = plain[where]
    names = (_STEP, _RUNTIME, _TIMESTAMP)
    code = {name: keys.index(name) if name in keys else -1 for name in names}
    is_step, is_runtime, is_stamp = (key == code[name] for name in names)
    special = is_step | is_runtime | is_stamp
    if not is_plain[special].all():
        raise _UnsureError  # a _step, _runtime or _timestamp that is not a plain number
    rows, row_of = np.unique(items.record[where], return_inverse=True)
    row_of = row_of.reshape(-1)
    if rows.size != given[0].size:
        raise _UnsureError  # a history record without items

    step = np.full(rows.size, np.nan)
    at = np.nonzero(is_step)[0][::-1]  # the first _step of a row counts: written last
    step[row_of[at]] = value[at]
    step = np.where(given[1], given[0].astype(np.float64), step)
    if not (np.abs(step) < _MAX_EXACT).all():  # NaN too: a row without a usable step
        raise _UnsureError
    steps = np.trunc(step).astype(np.int64)

    if not np.isfinite(value[is_runtime]).all():
        raise _UnsureError  # the general decoder warns about it
    runtime = np.full(rows.size, np.nan)
    at = np.nonzero(is_runtime)[0]  # the last one of a row counts
    runtime[row_of[at]] = value[at]
    has_runtime = np.zeros(rows.size, np.bool_)
    has_runtime[row_of[at]] = True

    logged = value[is_stamp]
    if not ((logged >= MIN_SECONDS) & (logged <= MAX_SECONDS)).all():
        raise _UnsureError  # not a time: the general decoder warns about it
    stamp = np.zeros(rows.size)
    at = np.nonzero(is_stamp)[0]
    stamp[row_of[at]] = value[at]
    has_stamp = np.zeros(rows.size, np.bool_)
    has_stamp[row_of[at]] = True
    stamps = np.rint(stamp * 1e6).astype(np.int64)

    metric = np.nonzero(~special)[0]
    simple = metric[is_plain[metric]]
    frame = pl.DataFrame(
        {
            "order": simple,
            "part": np.zeros(simple.size, np.int64),
            "key": key[simple],
            "value": value[simple],
        }
    )
    others = metric[~is_plain[metric]]
    if others.size:
        frame = pl.concat(
            [frame, _decoded_points(buf, items, where, others, key_of, keys, general)]
        ).sort("order", "part")
    row = row_of[frame["order"].to_numpy()]
    if has_runtime.any():
        run.last_runtime = float(runtime[np.nonzero(has_runtime)[0][-1]])
    return pl.DataFrame(
        {
            "metric": pl.Series(keys, dtype=pl.String).gather(frame["key"]),
            "step": steps[row],
            "time": pl.Series(runtime[row]).set(pl.Series(~has_runtime[row]), None),
            "timestamp": pl.Series(stamps[row]).set(pl.Series(~has_stamp[row]), None),
            "value": frame["value"],
        }
    )


def _decoded_points(
    buf: Bytes,
    items: _Items,
    where: Ints,
    others: Ints,
    key_of: Ints,
    keys: list[str],
    general: object,
) -> pl.DataFrame:
    """Points of the history items whose value is not a plain number (a boolean, a nested
    dict, text, media), decoded as the general decoder does (`_json`, then `_numbers`);
    `keys` grows by the names of nested values."""
    order: list[int] = []
    part: list[int] = []
    key_index: list[int] = []
    value: list[float] = []
    for position in others.tolist():
        item = int(where[position])
        start = int(items.value_start[item])
        raw = bytes(buf[start : start + int(items.value_length[item])]).decode("utf-8", "replace")
        problems: list[str] = []
        decoded = general._json(raw, problems)  # type: ignore[attr-defined]
        if problems:
            raise _UnsureError  # warned about by the general decoder
        name = keys[int(key_of[item])]
        found: list[tuple[str, float]] = []
        try:
            if type(decoded) is float or type(decoded) is int:
                found.append((name, float(decoded)))
            else:
                general._numbers(name, decoded, found)  # type: ignore[attr-defined]
        except OverflowError as error:
            raise _UnsureError from error
        for sub, (metric, number) in enumerate(found):
            if metric not in keys:
                keys.append(metric)
            order.append(position)
            part.append(sub)
            key_index.append(keys.index(metric))
            value.append(number)
    return pl.DataFrame(
        {"order": order, "part": part, "key": key_index, "value": value},
        schema={"order": pl.Int64, "part": pl.Int64, "key": pl.Int64, "value": pl.Float64},
    )


def _apply_in_order(
    payload: bytes,
    buf: Bytes,
    items: _Items,
    history: Ints,
    summary: Ints,
    summary_odd: Bools,
    key_of: Ints,
    key_bytes: list[bytes],
    keys: list[str],
    content: Ints,
    starts: Ints,
    ends: Ints,
    ours: Bools,
    run: _Run,
    general: object,
) -> list[str]:
    """Apply the summary records and the other records (run, config, exit, preempting) in
    the order the general decoder does: a summary record when the history row after it is
    read (it is compared with that row), any other record where it is. Returns the warnings
    the general decoder gives for them."""
    following = np.searchsorted(history, summary)
    next_row = np.where(
        following < history.size, history[np.minimum(following, max(history.size - 1, 0))], -1
    ) if history.size else np.full(summary.size, -1, np.int64)  # fmt: skip
    auto = _repeats_next_row(buf, items, history, summary, summary_odd, next_row, key_of, key_bytes)
    others = np.nonzero(~ours)[0]
    at_end = np.iinfo(np.int64).max
    where = np.concatenate((np.where(next_row >= 0, next_row, at_end), others))
    record = np.concatenate((summary, others))
    is_summary = np.concatenate((np.ones(summary.size, np.bool_), np.zeros(others.size, np.bool_)))
    index_in_summary = np.concatenate((np.arange(summary.size), np.full(others.size, -1)))
    order = np.lexsort((record, where))
    is_auto = np.zeros(order.size, np.bool_)
    is_auto[: summary.size] = auto
    in_order_auto = is_auto[order]
    record_items: dict[int, list[int]] = {}
    warnings: list[str] = []

    def drop_repeated(position: int) -> None:
        """An auto summary record: its own keys follow the history, not the summary."""
        index = int(record[position])
        if not record_items:
            for i in np.nonzero(np.isin(items.record, summary))[0].tolist():
                record_items.setdefault(int(items.record[i]), []).append(i)
        for i in record_items.get(index, []):
            if not key_bytes[key_of[i]].startswith(b"_"):
                run.summary.pop(keys[key_of[i]], None)

    done = 0  # events before this place in `order` are applied
    for at in [*np.nonzero(~in_order_auto)[0].tolist(), order.size]:
        if run.summary:  # dropping keys from an empty summary changes nothing: skipped
            for skipped in range(done, at):
                drop_repeated(int(order[skipped]))
        done = at + 1
        if at == order.size:
            break
        position = int(order[at])
        index = int(record[position])
        a, b = int(content[index]), int(ends[index])
        if not is_summary[position]:
            warnings += _apply_other(payload[int(starts[index]) : b], index, run, general)
            continue
        s = int(index_in_summary[position])
        try:
            if summary_odd[index]:
                row = _row_items(payload, items, int(next_row[s]))
                if general._auto_summary(payload, a, b, row, run):  # type: ignore[attr-defined]
                    continue
            general._items(payload, a, b, run.summary)  # type: ignore[attr-defined]
        except (ValueError, OverflowError, IndexError, struct.error) as error:
            raise _UnsureError from error  # the general decoder warns about it
    return warnings


def _repeats_next_row(
    buf: Bytes,
    items: _Items,
    history: Ints,
    summary: Ints,
    summary_odd: Bools,
    next_row: Ints,
    key_of: Ints,
    key_bytes: list[bytes],
) -> Bools:
    """Which summary records only repeat the history row they wait for, as
    `offline._auto_summary` decides: every item not of a `_` key has the bytes of an item
    of that row. Records it decides otherwise (odd items, long lengths) are marked False
    here and decided by `_auto_summary` itself."""
    in_summary = np.isin(items.record, summary)
    s_items = np.nonzero(in_summary)[0]
    slot = np.searchsorted(summary, items.record[s_items])
    target = next_row[slot]
    own = ~np.array([k.startswith(b"_") for k in key_bytes], np.bool_)[key_of[s_items]]
    matched = np.zeros(s_items.size, np.bool_)
    h_items = np.nonzero(np.isin(items.record, history))[0]
    check = np.nonzero(own & (target >= 0))[0]
    if check.size and h_items.size:
        matched[check] = _same_items(buf, items, s_items[check], h_items, target[check])
    count = np.bincount(slot, minlength=summary.size)
    missing = np.bincount(slot, weights=(own & ~matched).astype(np.float64), minlength=summary.size)
    # `_len_fields` reads item lengths of at most two bytes; a longer one it leaves to
    # `_auto_summary`, which then answers False
    long_header = np.zeros(summary.size, np.bool_)
    np.logical_or.at(long_header, slot, items.header[s_items] > 3)
    auto: Bools = (count > 0) & (missing == 0) & ~summary_odd[summary] & ~long_header
    return auto


def _same_items(buf: Bytes, items: _Items, s_items: Ints, h_items: Ints, target: Ints) -> Bools:
    """Whether each summary item's content bytes equal those of an item of history record
    `target` (hashes compared first, then the bytes of every match)."""
    length = items.end - items.start
    if int(length[s_items].max()) > _MAX_ITEM or int(length[h_items].max()) > _MAX_ITEM:
        raise _UnsureError
    hashed_h = _row_hash(_gather(buf, items.start[h_items], length[h_items]), length[h_items])
    hashed_s = _row_hash(_gather(buf, items.start[s_items], length[s_items]), length[s_items])
    with np.errstate(over="ignore"):
        h_key = hashed_h ^ (items.record[h_items].astype(np.uint64) * _MIX)
        s_key = hashed_s ^ (target.astype(np.uint64) * _MIX)
    sort = np.argsort(h_key, kind="stable")
    sorted_keys = h_key[sort]
    at = np.minimum(np.searchsorted(sorted_keys, s_key), sorted_keys.size - 1)
    found = sorted_keys[at] == s_key
    match = h_items[sort[at]]
    same = (items.record[match] == target) & (length[match] == length[s_items])
    left = _gather(buf, items.start[s_items], length[s_items])
    right = _gather(buf, items.start[match], length[match])
    width = min(left.shape[1], right.shape[1])
    same &= (left[:, :width] == right[:, :width]).all(axis=1)
    if (found & ~same).any():
        raise _UnsureError  # two different items with one hash
    result: Bools = found
    return result


def _row_items(payload: bytes, items: _Items, record: int) -> set[bytes]:
    """The content bytes of the items of history record `record` (none: no row after)."""
    if record < 0:
        return set()
    at = np.nonzero(items.record == record)[0]
    return {payload[int(items.start[i]) : int(items.end[i])] for i in at.tolist()}


def _apply_other(record: bytes, index: int, run: _Run, general: object) -> list[str]:
    """One record that is neither history nor summary, as `offline.apply_records` applies
    it; its warnings."""
    warnings: list[str] = []
    try:
        for number, wire, x, y in spans(record):
            if wire != 2:
                continue
            if number in (2, 3):
                raise _UnsureError  # history or summary after another field: not ours
            general.apply_field(record, number, x, y, run)  # type: ignore[attr-defined]
    except (ValueError, OverflowError, IndexError, struct.error) as error:
        warnings.append(f"record {index} is not a readable W&B record ({error}); skipped")
    if run.problems:
        warnings.append(f"record {index}: {'; '.join(dict.fromkeys(run.problems))}")
        run.problems.clear()
    return warnings
