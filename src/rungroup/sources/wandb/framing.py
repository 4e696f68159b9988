"""A W&B run file's records found and checked in numpy, for `bulk`.

The log (`offline.py` describes it) is sequential: each chunk's header gives its length, and
the next chunk starts after it, or at the next 32 KiB block when fewer than 7 bytes are left
in this one. Walking that in Python costs about a microsecond a chunk, 3,000 of them in a
file of 5,000 points. Here the offsets that look like the header of a whole record or of a
record's first fragment (a type byte of 1 or 2, a length that stays within the block, and
the Record's `num` field first, as wandb writes it) are found in one numpy pass, and a
stretch of them where each chunk ends exactly where the next one starts is taken at once:
starting from a real chunk, each of them is the next real chunk. Where that breaks (a middle
or last fragment, a record laid out otherwise, an offset inside a record's bytes that looks
like a header) one chunk is walked in Python and the stretches resume.

All the chunks' checksums are then checked in one pass of zlib's C CRC-32 over a copy of
the file (`_crcs_hold`). A file this path cannot frame the same way as the record-by-record
reader (a damaged or truncated chunk, a zero-filled block, fragments out of order) is framed
by `frame_in_python` (the lead's loop over the chunks), which says None when any chunk is
damaged; the general decoder then reports it.
"""

from __future__ import annotations

import bisect
import functools
import struct
import zlib

import numpy as np
import numpy.typing as npt

__all__ = ["Framed", "frame", "frame_in_python"]

HEADER = b":W&B"
HEADER_SIZE = 7
BLOCK = 32768
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_CHUNK = struct.Struct("<IHB")
#: zlib's CRC-32 of each type byte, where a chunk's checksum starts
_TYPE_CRC = [zlib.crc32(bytes([kind])) for kind in range(256)]
#: a Record's first byte as wandb writes it: `num = 1`'s tag
_NUM_TAG = 0x08

Ints = npt.NDArray[np.int64]
Bytes = npt.NDArray[np.uint8]

#: A file's records: `(piece, starts, ends)`, each record `piece[starts[i]:ends[i]]`, in the
#: file's order and in increasing position. `piece` is the file's bytes (records read where
#: they lie, those in fragments joined in place), or all the records joined.
Framed = tuple[bytes | bytearray, Ints, Ints]


def frame(data: bytes) -> Framed | None:
    """The records of a whole run file, every chunk whole, in order and matching its
    checksum; None if not (the general decoder then says what is wrong)."""
    if len(data) < HEADER_SIZE or data[:4] != HEADER:
        return None
    found = _frame_in_numpy(data)
    return found if found is not None else frame_in_python(data)


def frame_in_python(data: bytes) -> Framed | None:
    """`frame`, chunk by chunk in Python: the reference, and the way for files the numpy
    walk does not take."""
    size = len(data)
    view = memoryview(data)
    parts: list[memoryview] = []
    ends: list[int] = []
    total = 0
    inside = False  # between a FIRST fragment and its LAST
    pos = HEADER_SIZE
    unpack = _CHUNK.unpack_from
    crc = zlib.crc32
    type_crc = _TYPE_CRC
    while pos < size:
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:
            pos += left  # padding
            continue
        if pos + CHUNK_HEADER > size:
            return None
        checksum, length, kind = unpack(data, pos)
        start = pos + CHUNK_HEADER
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
        if kind in (FULL, FIRST):
            if inside:
                return None
            inside = kind == FIRST
        elif kind in (MIDDLE, LAST):
            if not inside:
                return None
            inside = kind == MIDDLE
        else:
            return None
        parts.append(chunk)
        total += length
        if not inside:
            ends.append(total)
    if inside:
        return None
    end_array = np.asarray(ends, np.int64)
    starts = np.concatenate(([0], end_array)).astype(np.int64)[:-1]
    return b"".join(parts), starts, end_array


def _frame_in_numpy(data: bytes) -> Framed | None:
    buf: Bytes = np.frombuffer(data, np.uint8)
    heads = _chunk_heads(data, buf)
    if heads is None or heads.size == 0:
        return None
    lengths = _words(buf, "<u2")[heads + 4].astype(np.int64)
    kinds = buf[heads + 6]
    # fragments in order: a middle or last one only after a first or middle one, a whole
    # record or a first fragment only after a whole record or a last fragment
    inside_after = (kinds == FIRST) | (kinds == MIDDLE)
    inside_before = np.concatenate(([False], inside_after[:-1]))
    if ((kinds < FULL) | (kinds > LAST)).any() or inside_after[-1]:
        return None
    if (inside_before != (kinds >= MIDDLE)).any():
        return None
    if not _crcs_hold(buf, heads, lengths):
        return None
    starts = heads + CHUNK_HEADER
    ends = starts + lengths
    whole = kinds == FULL
    if whole.all():
        return data, starts, ends
    # a record in fragments is joined where it lies: its fragments' bytes moved up to its
    # last one's, over the headers and padding between them, so that every record is in
    # one piece and the records stay in the file's order
    piece = bytearray(data)
    opening = np.flatnonzero(whole | (kinds == FIRST))
    closing = np.flatnonzero(whole | (kinds == LAST))
    record_starts = starts[opening]
    record_ends = ends[closing]
    for n in np.flatnonzero(closing != opening).tolist():
        at = int(record_ends[n])
        for i in range(int(closing[n]), int(opening[n]) - 1, -1):
            a, b = int(starts[i]), int(ends[i])
            piece[at - (b - a) : at] = piece[a:b]  # (the right side is a copy)
            at -= b - a
        record_starts[n] = at
    return piece, record_starts, record_ends


def _chunk_heads(data: bytes, buf: Bytes) -> Ints | None:
    """The offsets of every chunk's header, in order; None where the walk meets what
    `frame_in_python` must judge (a zero-filled block, a chunk past its block or the file's
    end, a header cut short)."""
    size = len(data)
    candidates, after, stretch_end = _candidates(buf)
    listed = candidates.tolist()  # searched from Python: a list is cheaper than numpy
    count = len(listed)
    heads: list[Ints] = []
    walked: list[int] = []  # chunks walked in Python since the last stretch
    unpack = _CHUNK.unpack_from
    pos = HEADER_SIZE
    while pos < size:
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:
            pos += left  # padding
            continue
        k = bisect.bisect_left(listed, pos)
        if k < count and listed[k] == pos:
            last = int(stretch_end[k])
            if walked:
                heads.append(np.asarray(walked, np.int64))
                walked = []
            heads.append(candidates[k : last + 1])
            pos = int(after[last])
            continue
        if pos + CHUNK_HEADER > size:
            return None
        _, length, kind = unpack(data, pos)
        end = pos + CHUNK_HEADER + length
        if kind == 0 or end > pos + left or end > size:
            return None
        walked.append(pos)
        pos = end
    if walked:
        heads.append(np.asarray(walked, np.int64))
    if not heads:
        return np.zeros(0, np.int64)
    return np.concatenate(heads) if len(heads) > 1 else heads[0]


def _candidates(buf: Bytes) -> tuple[Ints, Ints, Ints]:
    """(offsets that look like the header of a whole record or a first fragment, the offset
    of the next chunk after each, the index of the last candidate of the stretch each one
    starts)."""
    size = buf.size
    empty = np.zeros(0, np.int64)
    if size < HEADER_SIZE + CHUNK_HEADER + 1:
        return empty, empty, empty
    # the `num` tag first (rarer than a type byte of 1 or 2), then the rest of the header
    at = np.flatnonzero(buf[HEADER_SIZE + CHUNK_HEADER :] == _NUM_TAG) + HEADER_SIZE
    kind = buf[at + 6]
    at = at[(kind == FULL) | (kind == FIRST)]
    after = at + CHUNK_HEADER + _words(buf, "<u2")[at + 4].astype(np.int64)
    block_end = (at // BLOCK + 1) * BLOCK
    whole = (after <= block_end) & (after <= size) & (block_end - at >= CHUNK_HEADER)
    at, after, block_end = at[whole], after[whole], block_end[whole]
    # fewer than 7 bytes left in the block: padding, the next chunk starts the next block
    after = np.where((block_end - after < CHUNK_HEADER) & (after < size), block_end, after)
    # an offset inside a record's bytes that looks like a header rarely leads to another:
    # left out, it does not break the stretch of the real chunks around it (a real chunk
    # left out with it is walked in Python)
    if at.size:
        leads = at[np.minimum(np.searchsorted(at, after), at.size - 1)] == after
        kept = leads | (after >= size)
        at, after = at[kept], after[kept]
    breaks = np.flatnonzero(np.append(after[:-1] != at[1:], True))
    stretch_end = breaks[np.searchsorted(breaks, np.arange(at.size))]
    return at, after, stretch_end


def _words(buf: Bytes, dtype: str) -> npt.NDArray[np.unsignedinteger]:
    """Little-endian unsigned integers starting at every byte offset (a strided view)."""
    width = np.dtype(dtype).itemsize
    words: npt.NDArray[np.unsignedinteger] = np.ndarray(
        (max(buf.size - width + 1, 0),), dtype=dtype, buffer=buf, strides=(1,)
    )
    return words


@functools.cache
def _zero_crcs() -> npt.NDArray[np.uint32]:
    """zlib's CRC-32 of 0, 1, ..., BLOCK zero bytes: what the initial register value and the
    final inversion add to the CRC of a message of that length."""
    out = np.zeros(BLOCK + 1, np.uint32)
    crc = 0
    zero = b"\0"
    for length in range(1, BLOCK + 1):
        crc = zlib.crc32(zero, crc)
        out[length] = crc
    return out


def _crcs_hold(buf: Bytes, heads: Ints, lengths: Ints) -> bool:
    """Whether every chunk at `heads` matches its checksum (zlib's CRC-32 of its type byte
    and data), in one CRC pass over a copy of the file.

    Without the initial value and final inversion the CRC (`crc0`) is linear and
    ``crc0(m + le32(crc0(m))) == 0``: the register is back at zero after a message followed
    by its own `crc0`, and zero bytes leave it there. In the copy, every header's checksum
    and length and every byte outside a chunk are zeroed and each chunk's stored checksum,
    turned into the `crc0` its type byte and data must have, is written just after its data
    (over the next header's zeroed bytes: at least six of them come before the next type
    byte). The copy's `crc0` is then zero when every chunk matches. Damage in two or more
    chunks passes only if it cancels exactly, as likely as random damage passing one
    chunk's own CRC (2**-32): a False makes the caller check the chunks one by one."""
    size = buf.size
    work = np.zeros(size + 4, np.uint8)
    work[:size] = buf
    work[:HEADER_SIZE] = 0
    stored = _words(buf, "<u4")[heads].astype(np.uint32)
    work[(heads[:, None] + np.arange(6)).reshape(-1)] = 0
    ends = heads + CHUNK_HEADER + lengths
    # padding at a block's end and after the last chunk
    gaps = np.flatnonzero(np.append(heads[1:], size) > ends)
    for gap in gaps.tolist():
        following = int(heads[gap + 1]) if gap + 1 < heads.size else size
        work[int(ends[gap]) : following] = 0
    words = _words(work, "<u4")
    words[ends] = stored ^ _zero_crcs()[lengths + 1]
    return zlib.crc32(work.data, 0xFFFFFFFF) == 0xFFFFFFFF
