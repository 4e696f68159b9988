"""The event layout tensorboardX and torch write for a `simple_value` scalar, decoded for all
of a file's records at once in numpy; records of any other layout are left to the general
walk (`rungroup.sources.tensorboard.decode`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from rungroup.sources.protoreader import FIXED32, FIXED64, LEN, VARINT
from rungroup.sources.runrecords import MAX_SECONDS, MIN_SECONDS
from rungroup.sources.tensorboard.proto import Event, Summary, Value
from rungroup.sources.tensorboard.records import Records, words_at

#: The key bytes (field number << 3 | wire type) of the layout `simple_values` decodes.
_WALL_KEY = Event.WALL_TIME << 3 | FIXED64
_STEP_KEY = Event.STEP << 3 | VARINT
_SUMMARY_KEY = Event.SUMMARY << 3 | LEN
_VALUE_KEY = Summary.VALUE << 3 | LEN
_TAG_KEY = Value.TAG << 3 | LEN
_SIMPLE_VALUE_KEY = Value.SIMPLE_VALUE << 3 | FIXED32


def simple_values(
    data: bytes,
    records: Records,
    prefix: str,
    untimed: list[tuple[int, float]],
    categorical: bool = False,
) -> tuple[np.ndarray[Any, np.dtype[np.bool_]], pl.DataFrame | None]:
    """Decode, all at once in numpy, the records laid out as tensorboardX and torch write one
    `simple_value` scalar: ``09 <wall:8> 10 <step:varint> 2a <n> 0a <n> 0a <n> <tag> 15
    <value:4>`` with one-byte lengths. Returns which records were decoded and their points
    (metric, step, wall, value; None if none was); the others go through the general decoder
    (step 0's too, written without a step field: the reader has always put their points
    after the others of their file). Records with a wall time that is not a time are added
    to `untimed` as (record, wall time), their points without one."""
    start, end = records
    count = len(start)
    done = np.zeros(count, dtype=np.bool_)
    if count == 0:
        return done, None
    buf = np.frombuffer(data, dtype=np.uint8)  # every probe below stays inside its record
    length = end - start
    index = np.flatnonzero((length >= 22) & (length < 128))
    at, end = start[index], end[index]
    keep = (buf[at] == _WALL_KEY) & (buf[at + 9] == _STEP_KEY)
    if not keep.all():  # (copies saved when every record has the layout)
        index, at, end = index[keep], at[keep], end[keep]
    # step: a varint of up to 4 bytes (steps below 2**28), read as one little-endian word
    word = words_at(buf, "<u4")[at + 10].astype(np.int64)
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
        return done, None
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
    walls = words_at(buf, "<f8")[at + 1]
    wrong = ~((walls >= MIN_SECONDS) & (walls <= MAX_SECONDS))  # NaN too
    if wrong.any():
        untimed.extend(zip(index[wrong].tolist(), walls[wrong].tolist(), strict=True))
        walls = np.where(wrong, np.nan, walls)
    values = words_at(buf, "<f4")[end - 4]
    names, codes = _tags(buf, pos + 6, tag_len)
    points = pl.DataFrame(
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
    return done, points


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
    words = words_at(buf, "<u8")
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
