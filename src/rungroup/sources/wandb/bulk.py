"""A W&B run file decoded in bulk: the common case at millions of points a second.

wandb writes every `log` as three records: a summary record repeating the row, the
HistoryRecord itself (one item per key: `key` or one `nested_key`, and `value_json`), and a
summary of its own `_runtime`. Decoded record by record (`offline.apply_records`) that is a
Python object per record, item and value. Here the files of a batch are framed in numpy
(`framing.py`), and the items of all their history and summary records are found at once:
every 0x0A byte in a message is a candidate item, and the candidates that tile a message
exactly are its items (a message they do not tile is walked field by field, the k-th field
of every such message at once). Keys are told apart by hashing their 8-byte words, the
values parsed by Polars (correctly rounded, as Python's `float` is), and whether a summary
record only repeats the history row after it (`offline._auto_summary`) is decided by
comparing item bytes in bulk.

The result is the `_Run` the general decoder makes, bit for bit. Whatever this path cannot
prove it reads the same way (a damaged or truncated record, fragments out of order, a step
field, a history key in several parts, a `_step`, `_runtime` or `_timestamp` that is not a
plain number, anything the general decoder would warn about in a history row) makes
`read_runs` give None for the file, which is then read the general way (which reports it).
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

from rungroup.sources.protoreader import spans
from rungroup.sources.runrecords import MAX_SECONDS, MIN_SECONDS, warn
from rungroup.sources.wandb.framing import Framed, _words, frame

if TYPE_CHECKING:
    from rungroup.sources.wandb.offline import _Run

__all__ = ["decode_runs", "read_runs"]

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
    key_parts: Ints  # `nested_key` parts: `key_length` spans them all, tags included
    first_key_length: Ints  # the first part's


def read_runs(datas: list[bytes], paths: list[Path]) -> list[_Run | None]:
    """The `offline._Run` of each whole run file's bytes (read together: numpy's work is
    done once for all of them), None for a file to decode the general way (which reports
    what is wrong with it, if anything)."""
    results: list[_Run | None] = []
    for path, outcome in zip(paths, decode_runs(datas), strict=True):
        if outcome is None:
            results.append(None)
            continue
        run, warnings = outcome
        for message in warnings:
            warn(path, message)
        results.append(run)
    return results


def decode_runs(datas: list[bytes]) -> list[tuple[_Run, list[str]] | None]:
    """`read_runs` without the warnings said: each run with the warnings its file makes
    (for a worker process to hand back)."""
    from rungroup.sources.wandb import offline

    framed = [frame(d) for d in datas]
    which = [i for i, f in enumerate(framed) if f is not None]
    results: list[tuple[_Run, list[str]] | None] = [None] * len(datas)
    if not which:
        return results
    try:
        decoded = _decode([f for f in framed if f is not None], offline)
    except _UnsureError:  # a hash shared by different bytes: too rare to do better
        return results
    for i, outcome in zip(which, decoded, strict=True):
        results[i] = outcome
    return results


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
        if not going.any():
            break
    return value, after, ~going


def _read_items(
    buf: Bytes, start: Ints, end: Ints, rows: Bools
) -> tuple[_Items, Bools, Ints, Bools]:
    """The items (field 1: `key` or one `nested_key`, then `value_json`) of the messages at
    `start`..`end` (in increasing position); which messages hold anything else (read no
    further); and for history `rows` the step of their HistoryStep field (2), where they
    have one with a step.

    The fields are found first (`_walk_common`, and `_walk_fields` for the messages it
    leaves), then every item is read at once."""
    last = buf.size - 16
    odd = np.zeros(start.shape, np.bool_)
    step = np.zeros(start.shape, np.int64)
    has_step = np.zeros(start.shape, np.bool_)
    message, at, stop, left = _walk_common(buf, start, end, rows, odd, step, has_step)
    header = np.full(at.size, 2, np.int64)
    if left.size:
        step[left] = 0  # read again by the general walk
        has_step[left] = False
        walked = _walk_fields(buf, start, end, rows, left, odd, step, has_step)
        message, at, header, stop = (
            np.concatenate((mine, theirs))
            for mine, theirs in zip((message, at, header, stop), walked, strict=True)
        )
        # by message, then position
        order = np.lexsort((at, message))
        message, at, header, stop = message[order], at[order], header[order], stop[order]
    content = at + header
    key_length = buf[content + 1].astype(np.int64)
    good = (content + 2 <= stop) & (key_length < 0x80)
    key_tag = buf[content]
    good &= (key_tag == 0x0A) | (key_tag == 0x12)
    key_end = np.minimum(content + 2 + key_length, last)
    # more `nested_key` parts ("_wandb", "runtime"): passed over, the first one named
    parts = np.ones(message.size, np.int64)
    for _ in range(8):
        more = np.flatnonzero(good & (buf[key_end] == 0x12) & (key_end < stop))
        if not more.size:
            break
        part = buf[key_end[more] + 1].astype(np.int64)
        good[more[part >= 0x80]] = False
        key_end[more] = np.minimum(key_end[more] + 2 + part, last)
        parts[more] += 1
    good &= (buf[key_end] == 0x82) & (buf[key_end + 1] == 0x01)
    # the value's length: one byte below 128, as nearly always, else a varint
    value_length = buf[key_end + 2].astype(np.int64)
    value_start = key_end + 3
    longer = np.flatnonzero(value_length >= 0x80)
    if longer.size:
        value_length[longer], value_start[longer], ok = _varint(buf, key_end[longer] + 2)
        good[longer[~ok]] = False
    good &= value_start + value_length == stop
    odd[message[~good]] = True
    # a key in several parts is kept as the bytes of all of them (its name made once per
    # distinct key by `_keys`)
    span = key_end - (content + 2)
    columns = (message, header, content, stop, content + 2, span, value_start, value_length)
    everything = (*columns, parts, key_length)
    kept = everything if good.all() else tuple(column[good] for column in everything)
    return _Items(*kept), odd, step, has_step


def _walk_common(
    buf: Bytes, start: Ints, end: Ints, rows: Bools, odd: Bools, step: Ints, has_step: Bools
) -> tuple[Ints, Ints, Ints, Ints]:
    """The fields of the messages laid out as wandb writes them: items (tag 0x0A) with
    lengths below 128, and in a history row perhaps a HistoryStep field last. Returns the
    items found (message, offset, end), in increasing position, and the messages left to
    `_walk_fields`.

    Every 0x0A byte inside a message is a candidate item; one whose length does not lead
    to another candidate, and is not at the message's start, lies inside an item and is
    dropped. Where the candidates left do not tile a message exactly (from its start, each
    item ending where the next begins, the last at its end or at its step field) the
    message is left to the general walk: nothing is taken on trust."""
    none = np.zeros(0, np.int64)
    if start.size == 0:
        return none, none, none, none
    lo, hi = int(start[0]), int(end.max())
    at = np.flatnonzero(buf[lo:hi] == 0x0A) + lo
    message = np.searchsorted(start, at, side="right") - 1
    inside = at < end[message]  # (every candidate is at or after the first start)
    at, message = at[inside], message[inside]
    length = buf[at + 1]
    stop = at + 2 + length
    # the real item before a candidate is at most a few candidates back: any between lie
    # inside it (a length or key of 10 is a 0x0A byte)
    kept = at == start[message]
    for back in range(1, 4):
        kept[back:] |= stop[:-back] == at[back:]
    at, message, stop, length = at[kept], message[kept], stop[kept], length[kept]
    count = at.size
    same_next = message[:-1] == message[1:]
    broken = np.zeros(start.size, np.bool_)
    broken[message[:-1][same_next & (stop[:-1] != at[1:])]] = True
    broken[message[length >= 0x80]] = True  # a longer length takes two bytes
    opens = np.ones(count, np.bool_)
    opens[1:] = ~same_next
    closes = np.ones(count, np.bool_)
    closes[:-1] = ~same_next
    broken[message[opens & (at != start[message])]] = True
    # the end of each message's items: its end, or its HistoryStep field
    tail = np.array(start)
    tail[message[closes]] = stop[closes]
    has_items = np.zeros(start.size, np.bool_)
    has_items[message] = True
    broken |= ~has_items & (start < end)
    stepped = np.flatnonzero(
        ~broken & (tail < end) & rows & (buf[np.minimum(tail, buf.size - 1)] == 0x12)
    )
    if stepped.size:
        cursor = tail.copy()
        _read_step(buf, stepped, cursor, end, odd, step, has_step)
        tail[stepped] = np.where(odd[stepped], end[stepped] + 1, cursor[stepped])
        odd[stepped] = False  # the general walk reads it again
    broken |= tail != end
    if broken.any():
        mine = ~broken[message]
        at, message, stop = at[mine], message[mine], stop[mine]
    return message, at, stop, np.flatnonzero(broken)


def _walk_fields(
    buf: Bytes,
    start: Ints,
    end: Ints,
    rows: Bools,
    which: Ints,
    odd: Bools,
    step: Ints,
    has_step: Bools,
) -> tuple[Ints, Ints, Ints, Ints]:
    """The items (message, offset, header length, end) of messages `which`, walked field
    by field: the k-th field of every message at once, by its tag and length."""
    last = buf.size - 16
    cursor = start.copy()
    walked: list[tuple[Ints, Ints, Ints, Ints]] = []
    active = which[cursor[which] < end[which]]
    while active.size:
        at = np.minimum(cursor[active], last)
        tag = buf[at]
        step_field = rows[active] & (tag == 0x12)
        if step_field.any():
            _read_step(buf, active[step_field], cursor, end, odd, step, has_step)
            active = active[cursor[active] < end[active]]
            continue
        first = buf[at + 1].astype(np.int64)
        second = buf[at + 2].astype(np.int64)
        two = first >= 0x80  # lengths of up to two bytes, as `_len_fields` reads them
        length = np.where(two, (first & 0x7F) | (second << 7), first)
        header = 2 + two
        stop = at + header + length
        good = (tag == 0x0A) & ~(two & (second >= 0x80)) & (stop <= end[active])
        bad = active[~good]
        odd[bad] = True
        cursor[bad] = end[bad]
        kept = active[good]
        cursor[kept] = stop[good]
        walked.append((kept, at[good], header[good], stop[good]))
        active = kept[cursor[kept] < end[kept]]
    if not walked:
        none = np.zeros(0, np.int64)
        return none, none, none, none
    message, at, header, stop = (np.concatenate(c) for c in zip(*walked, strict=True))
    return message, at, header, stop


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


#: the low k bytes of a little-endian word, for k = 0 ... 8
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], np.uint64)
#: values whose distinct ones the others are looked up among (`_distinct`)
_SAMPLE = 1024


def _keys(buf: Bytes, items: _Items) -> tuple[Ints, list[bytes], list[str], Bools]:
    """Each item's key as an index into the distinct keys (their bytes and names), and which
    items have a zero byte in their key.

    A key is read as the 8-byte words that cover it (the bytes past its end cleared), and
    hashed; the distinct hashes are found, and every key is checked word by word against the
    first key with its hash."""
    if items.record.size == 0:
        return np.zeros(0, np.int64), [], [], np.zeros(0, np.bool_)
    start, length = items.key_start, items.key_length
    words = _words(buf, "<u8")
    hashed = length.astype(np.uint64)
    columns = []
    with np.errstate(over="ignore"):
        for offset in range(0, max(int(length.max()), 1), 8):
            low = _LOW_BYTES[np.maximum(np.minimum(length - offset, 8), 0)]
            column = words[np.minimum(start + offset, words.size - 1)] & low
            columns.append(column)
            hashed = (hashed ^ column) * _MIX
            hashed ^= hashed >> np.uint64(29)
    codes, first = _distinct(hashed)
    for column in columns:
        if not (column == column[first][codes]).all():
            raise _UnsureError  # two keys with one hash
    raw = [bytes(buf[start[i] : start[i] + length[i]]) for i in first.tolist()]
    names = [
        _key_name(span, int(items.first_key_length[i]))
        for span, i in zip(raw, first.tolist(), strict=True)
    ]
    zero = np.array([b"\0" in span for span in raw], np.bool_)[codes]
    return codes, raw, names, zero


def _distinct(values: npt.NDArray[np.uint64]) -> tuple[Ints, Ints]:
    """(each value's index among the distinct values, the first position of each distinct
    value). A handful of keys stand for thousands of items: the distinct values among the
    first few are found, and every value is looked up among them (a binary search in a
    short list, cheaper than sorting them all); values not met yet go round again."""
    codes = np.zeros(values.size, np.int64)
    first: list[int] = []
    index = np.arange(values.size)
    rest = values
    while rest.size:
        found, at = np.unique(rest[:_SAMPLE], return_index=True)
        position = np.minimum(np.searchsorted(found, rest), found.size - 1)
        hit = found[position] == rest
        if 2 * int(np.count_nonzero(hit)) < rest.size:  # many keys: sorting pays
            found, at, inverse = np.unique(rest, return_index=True, return_inverse=True)
            position, hit = inverse.reshape(-1), np.ones(rest.size, np.bool_)
        codes[index[hit]] = len(first) + position[hit]
        first.extend(index[at].tolist())
        index, rest = index[~hit], rest[~hit]
    return codes, np.asarray(first, np.int64)


def _key_name(span: bytes, first: int) -> str:
    """A key's name as the general decoder makes it: its parts joined by '.'."""
    parts = [span[:first]]
    at = first
    while at < len(span):  # `0x12, length, part` (checked by `_read_items`)
        parts.append(span[at + 2 : at + 2 + span[at + 1]])
        at += 2 + span[at + 1]
    return ".".join(part.decode("utf-8", "replace") for part in parts)


def _plain_numbers(buf: Bytes, start: Ints, length: Ints) -> tuple[npt.NDArray[np.float64], Bools]:
    """The values that are plain JSON numbers, as the general decoder reads them
    (`offline._json`, then float: one without '.', 'e' or 'E' goes through Python's int, so
    `-0` is 0), and which are."""
    width = max(-(-int(length.max()) // 8) * 8 if length.size else 8, 8)
    matrix = _word_matrix(buf, start, length, width).view(np.uint8).reshape(-1, width)
    # the rows as a list of bytes each, cut to their lengths: binary values as Polars makes
    # them from numpy's bytes (which is eight times slower)
    rows = pl.Series(matrix).cast(pl.List(pl.UInt8))
    frame = (
        pl.DataFrame({"row": rows, "length": length})
        .select(text=pl.col("row").list.head(pl.col("length")).cast(pl.Binary))
        .select(text=pl.col("text").cast(pl.String, strict=False))
        .select(
            plain=pl.col("text").str.contains(_NUMBER).fill_null(False),
            number=pl.col("text").cast(pl.Float64, strict=False).fill_null(np.nan),
        )
    )
    plain = frame["plain"].to_numpy().copy()
    number = np.where(plain, frame["number"].to_numpy(), np.nan)
    for i in np.flatnonzero((number == 0) & np.signbit(number)).tolist():
        raw = bytes(buf[start[i] : start[i] + length[i]])
        if b"." not in raw and b"e" not in raw and b"E" not in raw:
            number[i] = 0.0  # Python's int: no negative zero
    return number, plain


def _word_matrix(buf: Bytes, start: Ints, length: Ints, width: int) -> npt.NDArray[np.uint64]:
    """The bytes at each of `start` (`length` of them, at most `width`, a multiple of 8)
    as the rows of a matrix of little-endian words, the bytes past each end zero."""
    words = _words(buf, "<u8")
    out = np.empty((start.size, width // 8), np.uint64)
    for column, offset in enumerate(range(0, width, 8)):
        low = _LOW_BYTES[np.maximum(np.minimum(length - offset, 8), 0)]
        out[:, column] = words[np.minimum(start + offset, words.size - 1)] & low
    return out


def _same_bytes(buf: Bytes, a: Ints, b: Ints, length: Ints) -> Bools:
    """Whether the `length` bytes at each of `a` equal those at `b`, 8 at a time."""
    words = _words(buf, "<u8")
    last = words.size - 1
    same = np.ones(a.size, np.bool_)
    which = np.arange(a.size)
    offset = 0
    while which.size:
        low = _LOW_BYTES[np.maximum(np.minimum(length[which] - offset, 8), 0)]
        left = words[np.minimum(a[which] + offset, last)]
        right = words[np.minimum(b[which] + offset, last)]
        same[which] &= ((left ^ right) & low) == 0
        offset += 8
        if offset >= 24:  # the few long ones go on alone
            which = which[length[which] > offset]
    return same


@dataclass
class _Batch:
    """The files decoded together: their records joined, and which file each belongs to."""

    payload: bytes
    buf: Bytes
    starts: Ints  # each record's bytes in `payload`
    ends: Ints
    content: Ints  # a history or summary record's message (after its tag and length)
    file_of: Ints  # each record's file
    first: Ints  # each file's first record
    unsure: Bools  # files to leave to the general decoder
    summary_odd: Bools  # summary records with items this path does not read (by record)
    is_history: Bools  # by record
    is_summary: Bools


def _decode(framed: list[Framed], general: object) -> list[tuple[_Run, list[str]] | None]:
    payload = b"".join([*(piece for piece, _, _ in framed), bytes(_PAD)])
    buf: Bytes = np.frombuffer(payload, np.uint8)
    sizes = np.array([len(piece) for piece, _, _ in framed], np.int64)
    base = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    counts = np.array([s.size for _, s, _ in framed], np.int64)
    starts = np.concatenate([s + b for (_, s, _), b in zip(framed, base, strict=True)])
    ends = np.concatenate([e + b for (_, _, e), b in zip(framed, base, strict=True)])
    file_of = np.repeat(np.arange(len(framed)), counts)
    first = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    unsure = np.zeros(len(framed), np.bool_)

    numbered = buf[starts] == 0x08  # `num = 1` first, as wandb writes it
    _, after_num, ok = _varint(buf, starts + 1)
    tag_at = np.where(numbered & ok, after_num, starts)
    # the `_info` field (200: stream id) that wandb may write before the record's payload
    info = (buf[tag_at] == 0xC2) & (buf[tag_at + 1] == 0x0C)
    length, after_info, ok = _varint(buf, np.minimum(tag_at + 2, buf.size - 8))
    tag_at = np.where(info & ok, np.minimum(after_info + length, buf.size - 8), tag_at)
    tag = buf[tag_at]
    ours = ((tag == _HISTORY_TAG) | (tag == _SUMMARY_TAG)) & (tag_at < ends)
    length, content, ok = _varint(buf, np.minimum(tag_at + 1, buf.size - 8))
    # a history or summary record with more fields after it
    unsure[file_of[ours & ~(ok & (content + length == ends))]] = True
    is_history = ours & (tag == _HISTORY_TAG)
    is_summary = ours & (tag == _SUMMARY_TAG)
    odd_summary = np.zeros(ends.size, np.bool_)
    batch = _Batch(
        payload, buf, starts, ends, content, file_of, first, unsure, odd_summary, is_history,
        is_summary,
    )  # fmt: skip
    history = np.nonzero(is_history)[0]
    summary = np.nonzero(is_summary)[0]
    held = np.nonzero(ours)[0]  # in increasing position, as `_read_items` needs
    rows = tag[held] == _HISTORY_TAG
    items, odd, field_step, has_field_step = _read_items(buf, content[held], ends[held], rows)
    # a history record with a key in several parts, or anything else
    unsure[file_of[history[odd[rows]]]] = True
    items.record = held[items.record]
    key_of, key_bytes, keys, zero = _keys(buf, items)
    unsure[file_of[items.record[zero]]] = True
    in_history = batch.is_history[items.record]
    # "a.b" from `key` and `nested_key` together is not what it seems: the general way
    several = (items.key_parts > 1) & (buf[items.start] == 0x0A)
    unsure[file_of[items.record[in_history & several]]] = True
    # only history values are needed as numbers (summary items are compared as bytes)
    values = np.full(items.record.size, np.nan)
    plain = np.zeros(items.record.size, np.bool_)
    short = np.nonzero(in_history & (items.value_length <= _MAX_VALUE))[0]
    if short.size:
        values[short], plain[short] = _plain_numbers(
            buf, items.value_start[short], items.value_length[short]
        )

    runs: list[_Run] = [general._Run() for _ in framed]  # type: ignore[attr-defined]
    given = (field_step[rows], has_field_step[rows])
    points = _history_points(
        batch, items, history, in_history, given, key_of, keys, values, plain, runs, general
    )
    batch.summary_odd[summary] = odd[~rows]
    warnings = _apply_in_order(
        batch, items, history, summary, key_of, key_bytes, keys, ours, runs,
        general,
    )  # fmt: skip
    decoded: list[tuple[_Run, list[str]] | None] = []
    for index, run in enumerate(runs):
        if unsure[index]:
            decoded.append(None)
            continue
        run.points = points[index]
        decoded.append((run, warnings[index]))
    return decoded


def _history_points(
    batch: _Batch,
    items: _Items,
    history: Ints,
    in_history: Bools,
    given: tuple[Ints, Bools],
    key_of: Ints,
    keys: list[str],
    values: npt.NDArray[np.float64],
    plain: Bools,
    runs: list[_Run],
    general: object,
) -> list[pl.DataFrame]:
    """Each file's history rows as points (metric, step, time, timestamp, value) in the
    order the general decoder appends them; each run's `last_runtime` set. `given`: each
    history record's step from its HistoryStep field, and whether it has one (it wins over
    `_step`). A file whose rows the general decoder would read differently or warn about
    is marked unsure."""
    unsure = batch.unsure
    file_of_row = batch.file_of[history]
    where = np.nonzero(in_history)[0]
    key = key_of[where]
    value = values[where]
    is_plain = plain[where]
    row_of = _positions(history, batch.ends.size)[items.record[where]]
    names = (_STEP, _RUNTIME, _TIMESTAMP)
    code = {name: keys.index(name) if name in keys else -1 for name in names}
    is_step, is_runtime, is_stamp = (key == code[name] for name in names)
    special = is_step | is_runtime | is_stamp
    # a _step, _runtime or _timestamp that is not a plain number
    unsure[file_of_row[row_of[special & ~is_plain]]] = True

    step = np.full(history.size, np.nan)
    at = np.nonzero(is_step)[0][::-1]  # the first _step of a row counts: written last
    step[row_of[at]] = value[at]
    step = np.where(given[1], given[0].astype(np.float64), step)
    usable = np.abs(step) < _MAX_EXACT  # NaN is not: a row without a step
    unsure[file_of_row[~usable]] = True
    steps = np.trunc(np.where(usable, step, 0.0)).astype(np.int64)

    # the general decoder warns about a _runtime that is not finite
    unsure[file_of_row[row_of[is_runtime & ~np.isfinite(value)]]] = True
    runtime = np.full(history.size, np.nan)
    at = np.nonzero(is_runtime)[0]  # the last one of a row counts
    runtime[row_of[at]] = value[at]
    has_runtime = np.zeros(history.size, np.bool_)
    has_runtime[row_of[at]] = True

    # ... and about a _timestamp that is not a time
    not_time = is_stamp & ~((value >= MIN_SECONDS) & (value <= MAX_SECONDS))
    unsure[file_of_row[row_of[not_time]]] = True
    stamp = np.zeros(history.size)
    at = np.nonzero(is_stamp)[0]
    stamp[row_of[at]] = np.where(not_time[at], 0.0, value[at])
    has_stamp = np.zeros(history.size, np.bool_)
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
        extra = _decoded_points(batch, items, where, others, key_of, keys, general)
        frame = pl.concat([frame, extra]).sort("order", "part")
    row = row_of[frame["order"].to_numpy()]
    timed = np.nonzero(has_runtime)[0]
    if timed.size:
        # the last row with a _runtime in each file
        files, last = np.unique(file_of_row[timed][::-1], return_index=True)
        for file, at_row in zip(files.tolist(), timed[::-1][last].tolist(), strict=True):
            runs[file].last_runtime = float(runtime[at_row])
    points = pl.DataFrame(
        {
            "metric": pl.Series(keys, dtype=pl.String).gather(frame["key"]),
            "step": steps[row],
            "time": pl.Series(runtime[row]).set(pl.Series(~has_runtime[row]), None),
            "timestamp": pl.Series(stamps[row]).set(pl.Series(~has_stamp[row]), None),
            "value": frame["value"],
        }
    )
    bounds = np.searchsorted(file_of_row[row], np.arange(len(runs) + 1))
    return [points.slice(int(a), int(b - a)) for a, b in itertools.pairwise(bounds)]


def _decoded_points(
    batch: _Batch,
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
        file = int(batch.file_of[items.record[item]])
        if batch.unsure[file]:
            continue
        start = int(items.value_start[item])
        raw = bytes(batch.buf[start : start + int(items.value_length[item])])
        problems: list[str] = []
        decoded = general._json(raw.decode("utf-8", "replace"), problems)  # type: ignore[attr-defined]
        name = keys[int(key_of[item])]
        found: list[tuple[str, float]] = []
        try:
            if type(decoded) is float or type(decoded) is int:
                found.append((name, float(decoded)))
            else:
                general._numbers(name, decoded, found)  # type: ignore[attr-defined]
        except OverflowError:
            problems.append("overflow")
        if problems:  # the general decoder warns about it
            batch.unsure[file] = True
            continue
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
    batch: _Batch,
    items: _Items,
    history: Ints,
    summary: Ints,
    key_of: Ints,
    key_bytes: list[bytes],
    keys: list[str],
    ours: Bools,
    runs: list[_Run],
    general: object,
) -> list[list[str]]:
    """Apply the summary records and the other records (run, config, exit, preempting) of
    each file in the order the general decoder does: a summary record when the history row
    after it is read (it is compared with that row), any other record where it is. Returns
    each file's warnings from the general decoder's functions."""
    file_of = batch.file_of
    following = np.minimum(np.searchsorted(history, summary), max(history.size - 1, 0))
    next_row = np.full(summary.size, -1, np.int64)
    if history.size:
        found = (history[following] > summary) & (file_of[history[following]] == file_of[summary])
        next_row = np.where(found, history[following], -1)
    auto = _repeats_next_row(batch, items, history, summary, next_row, key_of, key_bytes)
    others = np.nonzero(~ours)[0]
    at_end = np.iinfo(np.int64).max
    record = np.concatenate((summary, others))
    where = np.concatenate((np.where(next_row >= 0, next_row, at_end), others))
    order = np.lexsort((record, where, file_of[record]))
    is_auto = np.concatenate((auto, np.zeros(others.size, np.bool_)))[order]
    slot = np.concatenate((np.arange(summary.size), np.full(others.size, -1)))[order]
    record = record[order]
    bounds = np.searchsorted(file_of[record], np.arange(len(runs) + 1))
    summary_items = np.nonzero(batch.is_summary[items.record])[0]
    item_bounds = np.searchsorted(items.record[summary_items], summary)
    item_ends = np.append(item_bounds[1:], summary_items.size)
    own = ~np.array([k.startswith(b"_") for k in key_bytes], np.bool_)

    def drop_repeated(run: _Run, s: int) -> None:
        """An auto summary record: its own keys follow the history, not the summary."""
        for i in summary_items[item_bounds[s] : item_ends[s]].tolist():
            if own[key_of[i]]:
                run.summary.pop(keys[key_of[i]], None)

    warnings: list[list[str]] = []
    for file, run in enumerate(runs):
        warnings.append([])
        if batch.unsure[file]:
            continue
        lo, hi = int(bounds[file]), int(bounds[file + 1])
        try:
            done = lo  # events before this place in `order` are applied
            for at in [*(lo + np.nonzero(~is_auto[lo:hi])[0]).tolist(), hi]:
                if run.summary:  # dropping keys from an empty summary changes nothing
                    for skipped in range(done, at):
                        drop_repeated(run, int(slot[skipped]))
                done = at + 1
                if at == hi:
                    break
                index = int(record[at])
                if slot[at] < 0:
                    warnings[file] += _apply_other(batch, index, run, general)
                else:
                    _apply_summary(batch, items, index, int(next_row[slot[at]]), run, general)
        except _UnsureError:
            batch.unsure[file] = True
    return warnings


def _apply_summary(
    batch: _Batch, items: _Items, index: int, next_row: int, run: _Run, general: object
) -> None:
    """A summary record that does not only repeat its row: as the general decoder applies it
    (records with odd items are compared with the row by `_auto_summary` itself)."""
    a, b = int(batch.content[index]), int(batch.ends[index])
    try:
        if batch.summary_odd[index]:
            row = _row_items(batch.payload, items, next_row)
            if general._auto_summary(batch.payload, a, b, row, run):  # type: ignore[attr-defined]
                return
        general._items(batch.payload, a, b, run.summary)  # type: ignore[attr-defined]
    except (ValueError, OverflowError, IndexError, struct.error) as error:
        raise _UnsureError from error  # the general decoder warns about it


def _repeats_next_row(
    batch: _Batch,
    items: _Items,
    history: Ints,
    summary: Ints,
    next_row: Ints,
    key_of: Ints,
    key_bytes: list[bytes],
) -> Bools:
    """Which summary records only repeat the history row they wait for, as
    `offline._auto_summary` decides: every item not of a `_` key has the bytes of an item
    of that row. Records it decides otherwise (odd items, long lengths) are marked False
    here and decided by `_auto_summary` itself."""
    in_summary = batch.is_summary[items.record]
    s_items = np.nonzero(in_summary)[0]
    slot = _positions(summary, batch.ends.size)[items.record[s_items]]
    target = next_row[slot]
    own = ~np.array([k.startswith(b"_") for k in key_bytes], np.bool_)[key_of[s_items]]
    matched = np.zeros(s_items.size, np.bool_)
    h_items = np.nonzero(batch.is_history[items.record])[0]
    # an own key in several parts: `_auto_summary` names it by its first part
    batch.summary_odd[items.record[s_items[own & (items.key_parts[s_items] > 1)]]] = True
    check = np.nonzero(own & (target >= 0))[0]
    if check.size and h_items.size:
        matched[check], unclear = _same_items(
            batch.buf, items, key_of, s_items[check], h_items, target[check]
        )
        # left to `_auto_summary` itself
        batch.summary_odd[items.record[s_items[check[unclear]]]] = True
    count = np.bincount(slot, minlength=summary.size)
    missing = np.bincount(slot, weights=(own & ~matched).astype(np.float64), minlength=summary.size)
    # `_len_fields` reads item lengths of at most two bytes; a longer one it leaves to
    # `_auto_summary`, which then answers False
    long = (items.header[s_items] > 3).astype(np.float64)
    long_header = np.bincount(slot, weights=long, minlength=summary.size) > 0
    auto: Bools = (count > 0) & (missing == 0) & ~batch.summary_odd[summary] & ~long_header
    return auto


def _same_items(
    buf: Bytes, items: _Items, key_of: Ints, s_items: Ints, h_items: Ints, target: Ints
) -> tuple[Bools, Bools]:
    """Whether each summary item's content bytes equal those of the item with its key in
    history record `target` (the same key bytes, key tag, length and value bytes make the
    same content), and where that is not clear (a key twice in the row, a long value)."""
    keys = int(key_of.max()) + 1 if key_of.size else 1
    found, match, twice = _find_pairs(items.record, key_of, keys, h_items, s_items, target)
    length = items.end - items.start
    unclear = found & (twice | (items.value_length[s_items] > _MAX_ITEM))
    same = found & ~unclear & (items.key_parts[s_items] == 1)
    same &= buf[items.start[s_items]] == buf[items.start[match]]  # `key` or `nested_key`
    same &= (length[s_items] == length[match]) & (
        items.value_length[s_items] == items.value_length[match]
    )
    check = np.nonzero(same)[0]
    if check.size:
        same[check] = _same_bytes(
            buf,
            items.value_start[s_items[check]],
            items.value_start[match[check]],
            items.value_length[s_items[check]],
        )
    return same, unclear


def _find_pairs(
    record: Ints, key_of: Ints, keys: int, h_items: Ints, s_items: Ints, target: Ints
) -> tuple[Bools, Ints, Bools]:
    """For each summary item, whether history record `target` has an item with its key,
    such an item, and whether it has more than one (a table of rows by keys when
    that is small: a few keys for thousands of rows, as usual; else sorted pairs)."""
    rows = record[h_items]
    if rows.size and (rows[1:] >= rows[:-1]).all():
        first = np.ones(rows.size, np.bool_)
        first[1:] = rows[1:] != rows[:-1]
        if first.sum() * keys <= 4 * (h_items.size + s_items.size) + 4096:
            return _pairs_by_table(rows, first, key_of, keys, h_items, s_items, target)
    return _pairs_by_sorting(record, key_of, keys, h_items, s_items, target)


def _pairs_by_table(
    rows: Ints, first: Bools, key_of: Ints, keys: int, h_items: Ints, s_items: Ints, target: Ints
) -> tuple[Bools, Ints, Bools]:
    """`_find_pairs` for history items in record order (`rows`, `first` of each record)."""
    distinct = rows[first]
    row_of = np.cumsum(first) - 1
    flat = row_of * keys + key_of[h_items]
    table = np.full(distinct.size * keys, -1, np.int64)
    table[flat] = h_items  # (which item of a key twice in a row: unclear, either way)
    counts = np.bincount(flat, minlength=distinct.size * keys)
    at = np.minimum(np.searchsorted(distinct, target), distinct.size - 1)
    s_flat = np.where(distinct[at] == target, at * keys + key_of[s_items], -1)
    match = np.where(s_flat >= 0, table[s_flat], -1)
    found = match >= 0
    return found, np.maximum(match, 0), found & (counts[s_flat] > 1)


def _pairs_by_sorting(
    record: Ints, key_of: Ints, keys: int, h_items: Ints, s_items: Ints, target: Ints
) -> tuple[Bools, Ints, Bools]:
    """`_find_pairs` for any history items, by their sorted (record, key) pairs."""
    if h_items.size == 0:
        none = np.zeros(s_items.size, np.bool_)
        return none, np.zeros(s_items.size, np.int64), none
    h_pair = record[h_items] * keys + key_of[h_items]
    order = np.argsort(h_pair, kind="stable")
    pairs = h_pair[order]
    s_pair = target * keys + key_of[s_items]
    at = np.minimum(np.searchsorted(pairs, s_pair), pairs.size - 1)
    found = pairs[at] == s_pair
    twice = found & np.isin(s_pair, pairs[1:][pairs[1:] == pairs[:-1]])
    return found, h_items[order[at]], twice


def _positions(records: Ints, count: int) -> Ints:
    """Each of `count` records' position in the sorted `records` (-1 if not there): a
    look-up for many items, cheaper than a binary search each."""
    position = np.full(count, -1, np.int64)
    position[records] = np.arange(records.size)
    return position


def _row_items(payload: bytes, items: _Items, record: int) -> set[bytes]:
    """The content bytes of the items of history record `record` (none: no row after)."""
    if record < 0:
        return set()
    at = np.nonzero(items.record == record)[0]
    return {payload[int(items.start[i]) : int(items.end[i])] for i in at.tolist()}


def _apply_other(batch: _Batch, index: int, run: _Run, general: object) -> list[str]:
    """One record that is neither history nor summary, as `offline.apply_records` applies
    it; its warnings (numbered as the general decoder numbers records: from the file's
    first)."""
    record = batch.payload[int(batch.starts[index]) : int(batch.ends[index])]
    number_in_file = index - int(batch.first[batch.file_of[index]])
    warnings: list[str] = []
    try:
        for number, wire, x, y in spans(record):
            if wire != 2:
                continue
            if number in (2, 3):
                raise _UnsureError  # history or summary after another field: not ours
            general.apply_field(record, number, x, y, run)  # type: ignore[attr-defined]
    except (ValueError, OverflowError, IndexError, struct.error) as error:
        warnings.append(f"record {number_in_file} is not a readable W&B record ({error}); skipped")
    if run.problems:
        warnings.append(f"record {number_in_file}: {'; '.join(dict.fromkeys(run.problems))}")
        run.problems.clear()
    return warnings
