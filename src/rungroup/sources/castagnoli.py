"""CRC-32C (Castagnoli), masked as TFRecord files use it, checked for many records at once.

TensorBoard's event files frame every record with a masked CRC-32C of its length and of its
data. A byte-at-a-time loop in Python would cost more than the rest of the parsing, so the
check runs table-driven in numpy over all the records of a file together: records of equal
length are stacked and advanced one byte position per numpy step.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["crc32c", "frames_intact", "masked_crc32c_many"]

_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8


def _table() -> npt.NDArray[np.uint32]:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table[i] = crc
    return table


_TABLE = _table()


def crc32c(data: bytes) -> int:
    """CRC-32C of `data` (plain Python; for single short records and tests)."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = int(table[(crc ^ byte) & 0xFF]) ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _mask(crc: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    rotated: npt.NDArray[np.uint32] = (crc >> np.uint32(15)) | (crc << np.uint32(17))
    masked: npt.NDArray[np.uint32] = rotated + np.uint32(_MASK_DELTA)
    return masked


def masked_crc32c_many(
    buf: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint32]:
    """Masked CRC-32C of buf[starts[i] : starts[i] + lengths[i]] for every i.

    Records are bucketed by length (up to 16, 32, 64, ... bytes) and each bucket runs as one
    matrix, right-aligned and zero-padded on the left: with the initial 0xFFFFFFFF folded
    into the first four bytes of each record, the register starts at 0 and leading zero bytes
    leave it at 0, so the padding does not change the result.
    """
    out = np.zeros(len(starts), dtype=np.uint32)
    if len(starts) == 0:
        return out
    short = np.flatnonzero(lengths < 4)
    for i in short:
        s, n = int(starts[i]), int(lengths[i])
        out[i] = crc32c(bytes(buf[s : s + n]))
    limit = 16
    done = lengths < 4
    while not done.all():
        index = np.flatnonzero(~done & (lengths <= limit))
        done[index] = True
        if len(index):
            width = int(lengths[index].max())
            out[index] = _crc_matrix(buf, starts[index], lengths[index], width)
        limit *= 2
    return _mask(out)


def _crc_matrix(
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    width: int,
) -> npt.NDArray[np.uint32]:
    column = np.arange(width, dtype=np.int64)[None, :]
    pad = (width - lengths)[:, None]
    inside = column >= pad
    index = np.where(inside, starts[:, None] + column - pad, 0)
    matrix = np.where(inside, buf[index], 0).astype(np.uint32)
    first = pad[:, 0]
    rows = np.arange(len(starts))
    for k in range(4):  # fold the initial register value into the first four bytes
        matrix[rows, first + k] ^= np.uint32(0xFF)
    crc = np.zeros(len(starts), dtype=np.uint32)
    table = _TABLE
    eight = np.uint32(8)
    low = np.uint32(0xFF)
    for k in range(width):
        crc = table[(crc ^ matrix[:, k]) & low] ^ (crc >> eight)
    result: npt.NDArray[np.uint32] = crc ^ np.uint32(0xFFFFFFFF)
    return result


# The whole-file check below needs a CRC-32C that runs at memory speed over a buffer in one
# call; google-crc32c (Google's C implementation, SSE4.2/ARMv8 instructions) does, its
# pure-Python fallback would not, so that one counts as absent.
# (imported by name: a checkout whose environment predates the dependency still type-checks)
try:
    _google_crc32c = importlib.import_module("google_crc32c")
    _extend: Any = _google_crc32c.extend if _google_crc32c.implementation == "c" else None
except ImportError:  # pragma: no cover - a core dependency; kept for broken installs
    _extend = None


def _unmask(masked: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    rotated: npt.NDArray[np.uint32] = masked - np.uint32(_MASK_DELTA)
    plain: npt.NDArray[np.uint32] = (rotated >> np.uint32(17)) | (rotated << np.uint32(15))
    return plain


@functools.cache
def _zero_crcs(count: int) -> npt.NDArray[np.uint32]:
    """CRC-32C of 0, 1, ..., count - 1 zero bytes: what the initial register value and the
    final inversion add to the CRC of a message of that length."""
    out = np.zeros(count, dtype=np.uint32)
    register = 0xFFFFFFFF
    table = _TABLE.tolist()
    for length in range(count):
        out[length] = register ^ 0xFFFFFFFF
        register = table[register & 0xFF] ^ (register >> 8)
    return out


_ZERO_CRCS = 4096  # record lengths whose constant comes from the table; longer ones are rare


def frames_intact(
    buf: npt.NDArray[np.uint8], heads: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> bool | None:
    """Whether every TFRecord frame at `heads` (contiguous, each ``uint64 length, masked crc,
    data[length], masked crc``) holds both its checksums, in one CRC pass over the buffer;
    None when that pass is not available (no C CRC-32C) or the frames are not contiguous.

    The CRC without initial value and final inversion (`crc0`) is linear and
    ``crc0(m + le32(crc0(m))) == 0``. Each stored masked CRC is turned into the `crc0` its
    message must have (unmask, remove the length's constant) and written after its message
    in a copy of the buffer; the copy's `crc0` is then 0 when every record matches. A
    damaged record leaves a non-zero remainder unless the damage of two or more records
    cancels exactly, as likely as random damage passing one record's own CRC (2**-32):
    this is a CRC over the whole file, with every record's stored CRC as part of it.
    False tells only that some record is damaged: the caller then checks them one by one.
    """
    if _extend is None or len(heads) == 0:
        return None if _extend is None else True
    ends = heads + 16 + lengths
    if (heads[1:] != ends[:-1]).any():
        return None
    first, last = int(heads[0]), int(ends[-1])
    work = buf[first:last].copy()
    at = heads - first
    words = np.ndarray((len(work) - 3,), dtype="<u4", buffer=work, strides=(1,))
    length_want = _unmask(words[at + 8]) ^ _zero_crcs(9)[8]
    long = lengths >= _ZERO_CRCS
    constants = _zero_crcs(_ZERO_CRCS)[np.where(long, 0, lengths)]
    for index in np.flatnonzero(long).tolist():
        constants[index] = _crc0_of_zeros(int(lengths[index]))
    data_want = _unmask(words[at + 12 + lengths]) ^ constants
    words[at + 8] = length_want  # (writes through the view into `work`)
    words[at + 12 + lengths] = data_want
    remainder: int = _extend(0xFFFFFFFF, work) ^ 0xFFFFFFFF
    return remainder == 0


def _crc0_of_zeros(length: int) -> int:
    """`_zero_crcs` for one long length, through the C CRC."""
    crc: int = _extend(0, bytes(length))
    return crc
