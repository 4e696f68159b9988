"""CRC-32C (Castagnoli), masked as TFRecord files use it, checked for many records at once.

TensorBoard's event files frame every record with a masked CRC-32C of its length and of its
data. A byte-at-a-time loop in Python would cost more than the rest of the parsing, so the
check runs table-driven in numpy over all the records of a file together: records of equal
length are stacked and advanced one byte position per numpy step.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["crc32c", "masked_crc32c_many"]

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
