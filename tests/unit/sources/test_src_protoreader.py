"""The protobuf wire reader and the CRC-32C, checked against the protobuf package."""

from __future__ import annotations

import numpy as np
import pytest

from rungroup.sources.castagnoli import crc32c, masked_crc32c_many
from rungroup.sources.protoreader import DecodeError, read_varint, signed, spans, zigzag


def test_crc32c_known_answer_and_vectorised_equals_scalar() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 5000, dtype=np.uint8)
    starts = np.array([0, 10, 100, 4000, 17], dtype=np.int64)
    lengths = np.array([9, 37, 255, 1000, 0], dtype=np.int64)
    masked = masked_crc32c_many(data, starts, lengths)
    for s, n, m in zip(starts, lengths, masked, strict=True):
        crc = crc32c(bytes(data[s : s + n]))
        assert int(m) == ((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def test_fields_match_protobuf_encoding() -> None:
    from google.protobuf import struct_pb2

    value = struct_pb2.Value(number_value=-2.5)
    data = value.SerializeToString()
    assert [(n, w) for n, w, _, _ in spans(data)] == [(2, 1)]
    listing = struct_pb2.ListValue(values=[struct_pb2.Value(string_value="héllo")] * 3)
    data = listing.SerializeToString()
    parts = list(spans(data))
    assert len(parts) == 3 and all(n == 1 and w == 2 for n, w, _, _ in parts)


def test_varints() -> None:
    assert read_varint(b"\xac\x02", 0, 2) == (300, 2)
    assert signed((1 << 64) - 1) == -1
    assert zigzag(3) == -2 and zigzag(4) == 2
    with pytest.raises(DecodeError):
        read_varint(b"\xff\xff", 0, 2)
    with pytest.raises(DecodeError):
        list(spans(b"\x0a\x05ab"))  # length past the end
