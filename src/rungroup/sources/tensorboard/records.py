"""TFRecord framing of TensorBoard event files: each record is `uint64 length,
uint32 masked_crc32c(length), data, uint32 masked_crc32c(data)`. The frames are found and
checked in numpy; a truncated or damaged file is read up to the damage, with a warning."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from rungroup.sources.castagnoli import frames_intact, masked_crc32c_many
from rungroup.sources.runrecords import warn

_LENGTH = struct.Struct("<Q")


Records = tuple["np.ndarray[Any, np.dtype[np.int64]]", "np.ndarray[Any, np.dtype[np.int64]]"]


def frame_records(data: bytes, path: Path, check_crc: bool) -> Records:
    """(starts, ends) of the records' data, verified; a truncated or corrupt length field
    ends the file there, a record whose data fails its checksum is left out."""
    buf = np.frombuffer(data, dtype=np.uint8)
    heads = frame_heads(data, buf, path)
    start_arr = heads + 12
    if len(heads) == 0:
        return start_arr, start_arr.copy()
    lengths = stored(buf, heads, 8, np.uint64).astype(np.int64)
    end_arr = start_arr + lengths
    if not check_crc or frames_intact(buf, heads, lengths):
        return start_arr, end_arr
    count = len(heads)
    stored_len = stored(buf, start_arr - 4, 4, np.uint32)
    length_ok = masked_crc32c_many(buf, heads, np.full(count, 8)) == stored_len
    if not length_ok.all():
        count = int(np.argmin(length_ok))
        warn(path, f"record {count}: length checksum mismatch (corrupt file); read up to it")
    stored_data = stored(buf, end_arr[:count], 4, np.uint32)
    data_ok = masked_crc32c_many(buf, start_arr[:count], lengths[:count]) == stored_data
    bad = np.flatnonzero(~data_ok)
    for index in bad[:3]:
        warn(path, f"record {int(index)}: data checksum mismatch; record skipped")
    if len(bad) > 3:
        warn(path, f"{len(bad) - 3} more records with a data checksum mismatch skipped")
    return start_arr[:count][data_ok], end_arr[:count][data_ok]


#: The first data byte of an event as every writer lays it out: wall_time's key.
_FIRST_KEY = 0x09


def frame_heads(
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
    word = words_at(buf, "<u8")[at]
    short = word < 1 << 24  # records up to 16 MiB; longer ones are walked in Python
    at = at[short]
    after = at + 16 + word[short].astype(np.int64)
    whole = after <= size
    at, after = at[whole], after[whole]
    # a stretch goes on while a frame ends where the next candidate starts
    breaks = np.flatnonzero(np.append(after[:-1] != at[1:], True))
    stretch_end = breaks[np.searchsorted(breaks, np.arange(len(at)))]
    return at, after, stretch_end


def stored(
    buf: np.ndarray[Any, np.dtype[np.uint8]], at: np.ndarray[Any, Any], width: int, dtype: Any
) -> Any:
    """Little-endian unsigned integers of `width` bytes at each offset."""
    return words_at(buf, f"<u{width}")[at].astype(dtype)


def words_at(buf: np.ndarray[Any, np.dtype[np.uint8]], dtype: str) -> np.ndarray[Any, Any]:
    """A view of `buf` as the value of type `dtype` starting at every byte offset."""
    size = np.dtype(dtype).itemsize
    view: np.ndarray[Any, Any] = np.ndarray(
        (max(len(buf) - size + 1, 0),), dtype=dtype, buffer=buf, strides=(1,)
    )
    return view
