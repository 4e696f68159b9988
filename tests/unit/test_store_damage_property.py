"""Property: whatever bytes of a history are damaged, every record the damage did not touch
is read back, and no point is read that was not logged.

Random logs (metric names and values that may hold the record markers' bytes) are framed by
the writer's own encoder; then random bytes are overwritten, inserted or deleted after the
file header (a damaged file header makes the file unreadable, and says so).
"""

from __future__ import annotations

import struct
from array import array

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rungroup import store

MARKER_BYTES = store.RECORD_MAGIC + store.RECORD_MAGIC_V1
# values whose bytes hold the markers, besides any float
marker_values = st.sampled_from(
    [
        struct.unpack("<d", store.RECORD_MAGIC + store.RECORD_MAGIC_V1)[0],
        struct.unpack("<d", b"\x00\x00\x00\x00" + store.RECORD_MAGIC)[0],
    ]
)
values = st.one_of(st.floats(allow_nan=False, width=64), marker_values)
names = st.sampled_from(["loss", "acc", "RGRC", "\x89RGR", 'x"\\RGRC\x89RGR'])
Point = tuple[int, str, float]
records_strategy = st.lists(
    st.lists(st.tuples(st.integers(-(2**40), 2**40), names, values), min_size=1, max_size=12),
    min_size=1,
    max_size=8,
)


def encode(logged: list[list[Point]]) -> tuple[bytes, list[tuple[int, int]]]:
    """The history bytes as `Run` writes them, and each record's (start, end)."""
    table: list[str] = []
    parts, spans, position = [store.HISTORY_MAGIC], [], len(store.HISTORY_MAGIC)
    for sequence, points in enumerate(logged):
        for _, name, _ in points:
            if name not in table:
                table.append(name)
        record = store.encode_record(
            list(table),
            array("q", [s for s, _, _ in points]),
            array("d", [1.7e9 + sequence] * len(points)),
            array("I", [table.index(n) for _, n, _ in points]),
            array("d", [v for _, _, v in points]),
            sequence=sequence,
        )
        parts.append(record)
        spans.append((position, position + len(record)))
        position += len(record)
    return b"".join(parts), spans


def decoded_records(data: bytes) -> list[tuple[Point, ...]]:
    decoded = store.decode_history(data, "h")
    return [
        tuple(
            (int(s), decoded.names[int(i)], float(v))
            for s, i, v in zip(r.steps, r.metric_indices, r.values, strict=True)
        )
        for r in decoded.records
    ]


damages = st.lists(
    st.tuples(
        st.sampled_from(["overwrite", "insert", "delete"]),
        st.floats(0, 1, exclude_max=True),
        st.binary(min_size=1, max_size=24) | st.sampled_from([MARKER_BYTES, bytes(16)]),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logged=records_strategy, damage=damages)
def test_records_the_damage_did_not_touch_are_all_read(
    logged: list[list[Point]], damage: list[tuple[str, float, bytes]]
) -> None:
    data, spans = encode(logged)
    bounds = list(spans)  # where each record is now
    hit = [False] * len(spans)
    for kind, where, new in damage:
        at = len(store.HISTORY_MAGIC) + int(where * (len(data) - len(store.HISTORY_MAGIC)))
        for index, (start, end) in enumerate(bounds):
            if kind == "insert":  # bytes put between two records touch neither
                hit[index] |= start < at < end
            else:
                hit[index] |= at < end and at + len(new) > start
        if kind == "overwrite":
            data = data[:at] + new + data[at + len(new) :]
        elif kind == "insert":
            data = data[:at] + new + data[at:]
            bounds = [(s + len(new), e + len(new)) if s >= at else (s, e) for s, e in bounds]
        else:
            data = data[:at] + data[at + len(new) :]
            bounds = [(s - len(new), e - len(new)) if s >= at else (s, e) for s, e in bounds]
    read = decoded_records(data)
    expected = [tuple(points) for points in logged]
    intact = [expected[i] for i in range(len(spans)) if not hit[i]]
    for record in intact:
        assert record in read
    for record in read:
        assert record in expected  # never a point that was not logged


@settings(max_examples=200, deadline=None)
@given(logged=records_strategy, cut=st.floats(0, 1))
def test_a_cut_history_keeps_every_record_before_the_cut(
    logged: list[list[Point]], cut: float
) -> None:
    data, spans = encode(logged)
    at = int(cut * len(data))
    decoded = store.decode_history(data[:at], "h")
    whole = [tuple(points) for points, (_, end) in zip(logged, spans, strict=True) if end <= at]
    assert decoded_records(data[:at]) == whole
    assert decoded.problems == []  # a cut end is a record being written, not damage
    # what follows the last whole record (or all of a cut file header) waits to be read
    read_to = max([8] + [e for _, e in spans if e <= at]) if at >= 8 else 0
    assert decoded.incomplete_tail == at - read_to
