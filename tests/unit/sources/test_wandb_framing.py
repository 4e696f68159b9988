"""W&B run files framed in numpy (`wandb/framing.py`) against the chunk-by-chunk loop: the same
records on any layout of chunks (whole, in fragments over several blocks, block padding, bytes
that look like headers), and None for any damage, as the loop says."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rungroup.sources.wandb import framing
from rungroup.sources.wandb.framing import BLOCK, FIRST, FULL, LAST, MIDDLE

FILE_HEADER = b":W&B\xbe\xe1\x00"


def write_log(records: list[bytes]) -> bytes:
    """`records` in LevelDB's log format, as wandb writes them: a record cut into fragments
    where it crosses a block, fewer than 7 bytes at a block's end left as zero padding."""
    out = bytearray(FILE_HEADER)
    for record in records:
        left = record
        first = True
        while True:
            space = BLOCK - len(out) % BLOCK
            if space < 7:
                out += bytes(space)
                continue
            part, left = left[: space - 7], left[space - 7 :]
            last = not left
            kind = FULL if first and last else FIRST if first else LAST if last else MIDDLE
            crc = zlib.crc32(part, zlib.crc32(bytes([kind])))
            out += struct.pack("<IHB", crc, len(part), kind) + part
            first = False
            if last:
                break
    return bytes(out)


def records_of(framed: framing.Framed | None) -> list[bytes] | None:
    if framed is None:
        return None
    piece, starts, ends = framed
    assert (starts[1:] >= ends[:-1]).all() and (ends >= starts).all()  # in order
    return [piece[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


# Records as wandb starts them (`num = 1` first: 0x08) and otherwise, with bytes that look
# like chunk headers inside (a type byte of 1 or 2 followed by 0x08, small lengths).
LOOKALIKE = st.sampled_from([b"\x08", b"\x01\x08", b"\x02\x08", b"\x00", b"\x05\x00\x01\x08"])
RECORD = st.one_of(
    st.builds(lambda body: b"\x08\x01" + body, st.binary(max_size=300)),
    st.lists(st.one_of(LOOKALIKE, st.binary(max_size=20)), max_size=40).map(b"".join),
    # longer ones, up to across three blocks (made of a short pattern: hypothesis draws
    # little data)
    st.builds(
        lambda size, pattern: (pattern * size)[:size],
        st.integers(300, 80_000),
        st.binary(min_size=1, max_size=8),
    ),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(RECORD, max_size=60))
def test_numpy_frames_the_records_as_the_loop_does(records: list[bytes]) -> None:
    data = write_log(records)
    assert records_of(framing.frame(data)) == records
    assert records_of(framing.frame_in_python(data)) == records
    found = framing._frame_in_numpy(data)
    if records:
        assert records_of(found) == records  # the numpy walk itself, not the loop


@settings(max_examples=100, deadline=None)
@given(st.lists(RECORD, min_size=1, max_size=30), st.data())
def test_any_damaged_byte_makes_the_file_the_general_decoders(
    records: list[bytes], data: st.DataObject
) -> None:
    log = bytearray(write_log(records))
    at = data.draw(st.integers(len(FILE_HEADER), len(log) - 1))
    flip = data.draw(st.integers(1, 255))
    original = framing.frame_in_python(bytes(log))
    log[at] ^= flip
    damaged = bytes(log)
    # the loop says None for a chunk that no longer matches; padding it does not read
    expected = records_of(framing.frame_in_python(damaged))
    assert records_of(framing.frame(damaged)) == expected
    if expected is not None:  # a padding byte: the same records
        assert expected == records_of(original)


def test_two_damaged_chunks_are_caught() -> None:
    records = [b"\x08\x01" + bytes([i]) * 100 for i in range(50)]
    log = bytearray(write_log(records))
    log[300] ^= 0x10
    log[900] ^= 0x10
    assert framing._frame_in_numpy(bytes(log)) is None
    assert framing.frame(bytes(log)) is None


@pytest.mark.parametrize("cut", [1, 6, 7, 50])
def test_a_truncated_file_is_not_framed(cut: int) -> None:
    log = write_log([b"\x08\x01" + bytes(200)] * 20)
    assert framing.frame(log[:-cut]) is None


def test_a_zero_filled_block_is_left_to_the_loop() -> None:
    """wandb may leave the rest of a block zero-filled: the loop passes over it."""
    head = write_log([b"\x08\x01" + bytes(100)] * 3)
    zeros = bytes(BLOCK - len(head))
    tail = bytearray(write_log([b"\x08\x01" + bytes(50)] * 3)[len(FILE_HEADER) :])
    # re-framed at the next block: the same chunks (each checksum covers only its own bytes)
    data = head + zeros + bytes(tail)
    expected = [b"\x08\x01" + bytes(100)] * 3 + [b"\x08\x01" + bytes(50)] * 3
    assert framing._frame_in_numpy(data) is None
    assert records_of(framing.frame(data)) == expected


def test_not_a_wandb_file() -> None:
    assert framing.frame(b"") is None
    assert framing.frame(b"PK\x03\x04" + bytes(100)) is None


def test_fragments_out_of_order_are_not_framed() -> None:
    chunk = b"\x08\x01abc"
    crc = zlib.crc32(chunk, zlib.crc32(bytes([LAST])))
    data = FILE_HEADER + struct.pack("<IHB", crc, len(chunk), LAST) + chunk
    assert framing.frame(data) is None
