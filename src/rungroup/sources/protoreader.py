"""A small reader of the protobuf wire format, enough for TensorBoard's and W&B's records.

Protobuf messages are a sequence of (field number, wire type, payload). Reading them needs no
schema and no `protobuf` package: the loaders know which field numbers they care about (from
the public .proto files of TensorBoard and wandb) and skip the rest, so files written by newer
clients with new fields still load.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = [
    "DecodeError",
    "packed_doubles",
    "packed_floats",
    "packed_varints",
    "read_varint",
    "signed",
    "spans",
    "text",
    "to_double",
    "to_float",
    "zigzag",
]

VARINT, FIXED64, LEN, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5

_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


class DecodeError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at `pos`."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise DecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes")


def spans(
    buf: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, int, int]]:
    """Yield (field number, wire type, a, b) for each field of the message in buf[start:end].

    For LEN fields (strings, bytes, sub-messages, packed arrays) the payload is `buf[a:b]`;
    for VARINT, FIXED64 and FIXED32 fields `a` is the value (raw bits for fixed) and `b` is 0.
    """
    stop = len(buf) if end is None else end
    pos = start
    while pos < stop:
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = read_varint(buf, pos, stop)
        number = key >> 3
        wire = key & 7
        if number == 0:
            raise DecodeError("field number 0")
        if wire == VARINT:
            byte = buf[pos] if pos < stop else 0x80
            if byte < 0x80 and pos < stop:
                yield number, wire, byte, 0
                pos += 1
            else:
                value, pos = read_varint(buf, pos, stop)
                yield number, wire, value, 0
        elif wire == LEN:
            length = buf[pos] if pos < stop else 0x80
            if length < 0x80 and pos < stop:
                pos += 1
            else:
                length, pos = read_varint(buf, pos, stop)
            if pos + length > stop:
                raise DecodeError("truncated length-delimited field")
            yield number, wire, pos, pos + length
            pos += length
        elif wire == FIXED64:
            if pos + 8 > stop:
                raise DecodeError("truncated 64-bit field")
            yield number, wire, int.from_bytes(buf[pos : pos + 8], "little"), 0
            pos += 8
        elif wire == FIXED32:
            if pos + 4 > stop:
                raise DecodeError("truncated 32-bit field")
            yield number, wire, int.from_bytes(buf[pos : pos + 4], "little"), 0
            pos += 4
        else:
            raise DecodeError(f"unsupported wire type {wire}")


def to_double(bits: int) -> float:
    return float(_DOUBLE.unpack(bits.to_bytes(8, "little"))[0])


def to_float(bits: int) -> float:
    return float(_FLOAT.unpack(bits.to_bytes(4, "little"))[0])


def signed(value: int) -> int:
    """A varint read as int64 (negative numbers are 10-byte two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def zigzag(value: int) -> int:
    """A varint read as sint64/sint32 (zig-zag encoded)."""
    return (value >> 1) ^ -(value & 1)


def packed_doubles(buf: bytes, a: int, b: int) -> list[float]:
    return [float(v) for v in struct.unpack_from(f"<{(b - a) // 8}d", buf, a)]


def packed_floats(buf: bytes, a: int, b: int) -> list[float]:
    return [float(v) for v in struct.unpack_from(f"<{(b - a) // 4}f", buf, a)]


def packed_varints(buf: bytes, a: int, b: int) -> list[int]:
    out = []
    pos = a
    while pos < b:
        value, pos = read_varint(buf, pos, b)
        out.append(value)
    return out


def text(buf: bytes, a: int, b: int) -> str:
    return buf[a:b].decode("utf-8", errors="replace")
