"""TensorBoard event files, damaged: every case loads in a child process with a time limit.

The clean logs are written with tensorboardX (the real client): runs `a`, `b`, `c` with
hparams and `loss`, `acc` at 10 steps (20 points each). A case damages run `b`'s event file:
records re-framed or appended with tensorboardX's own protobuf classes and record framing
(`masked_crc32c`), or raw bytes where the point is a malformed message.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from damage_runner import load_isolated

CLEAN = {"a": 20, "b": 20, "c": 20}


@pytest.fixture(scope="module")
def clean_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    root = tmp_path_factory.mktemp("tb-clean") / "logs"
    for number, run in enumerate(("a", "b", "c")):
        writer = SummaryWriter(str(root / run))
        for summary in hparams({"lr": 0.1 * (number + 1)}, {"loss": 0.0}):
            writer.file_writer.add_summary(summary)
        for step in range(10):
            writer.add_scalar("loss", 1.0 / (step + 1 + number), step)
            writer.add_scalar("acc", step / 10, step)
        writer.close()
    return root


# --- helpers: the file of run b, its records, and new records -------------------------------


def _file(root: Path) -> Path:
    (path,) = (root / "b").glob("events.out.tfevents.*")
    return path


def _frame(data: bytes) -> bytes:
    from tensorboardX.record_writer import masked_crc32c

    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def _records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out = []
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        out.append(data[pos + 12 : pos + 12 + length])
        pos += 16 + length
    return out


def _offsets(path: Path) -> list[int]:
    """Where each record starts."""
    data = path.read_bytes()
    out = []
    pos = 0
    while pos + 12 <= len(data):
        out.append(pos)
        pos += 16 + struct.unpack_from("<Q", data, pos)[0]
    return out


def _append(root: Path, *payloads: bytes) -> None:
    with _file(root).open("ab") as handle:
        for payload in payloads:
            handle.write(_frame(payload))


def _scalar(step: int = 10, wall: float | None = 1_700_000_000.0, tag: str = "loss") -> bytes:
    from tensorboardX.proto import event_pb2

    event = event_pb2.Event(step=step)
    if wall is not None:
        event.wall_time = wall
    event.summary.value.add(tag=tag, simple_value=0.5)
    return bytes(event.SerializeToString())


def _rewrite_walls(root: Path, wall: float) -> None:
    """Every event of run b with `wall` as its wall_time (re-serialized, re-framed)."""
    from tensorboardX.proto import event_pb2

    path = _file(root)
    out = b""
    for record in _records(path):
        event = event_pb2.Event.FromString(record)
        event.wall_time = wall
        out += _frame(event.SerializeToString())
    path.write_bytes(out)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 0:
        assert isinstance(payload, int)
        return key + _varint(payload)
    assert isinstance(payload, bytes)
    if wire == 2:
        return key + _varint(len(payload)) + payload
    return key + payload


def _event(*values: bytes, step: int = 10) -> bytes:
    """An Event (wall_time 1, step 2, summary 5) holding Summary.Values."""
    summary = b"".join(_field(1, 2, v) for v in values)
    return (
        _field(1, 1, struct.pack("<d", 1_700_000_000.0))
        + _field(2, 0, step)
        + _field(5, 2, summary)
    )


def _scalars_plugin() -> bytes:
    """SummaryMetadata { plugin_data { plugin_name: "scalars" } }."""
    return _field(1, 2, _field(1, 2, b"scalars"))


def _tensor_value(tag: str, tensor: bytes) -> bytes:
    return _field(1, 2, tag.encode()) + _field(8, 2, tensor) + _field(9, 2, _scalars_plugin())


def _hparams_nested(depth: int) -> bytes:
    """An hparams session start whose one hparam is a list nested `depth` levels deep."""
    value = b""  # google.protobuf.Value {} (null)
    for _ in range(depth):
        value = _field(6, 2, _field(1, 2, value))  # list_value { values: value }
    entry = _field(1, 2, b"deep") + _field(2, 2, value)
    session = _field(1, 2, entry)
    content = _field(3, 2, session)
    plugin = _field(1, 2, _field(1, 2, b"hparams") + _field(2, 2, content))
    summary_value = _field(1, 2, b"_hparams_/session_start_info") + _field(9, 2, plugin)
    return _event(summary_value, step=0)


def _flip(root: Path, offset: int) -> None:
    path = _file(root)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _cut(root: Path, keep: Callable[[int], int]) -> None:
    path = _file(root)
    data = path.read_bytes()
    path.write_bytes(data[: keep(len(data))])


@dataclass(frozen=True)
class Case:
    name: str
    damage: Callable[[Path], None]
    runs: dict[str, int]
    #: fragments one LoadWarning must hold together; "{n}" is replaced by the number of
    #: records in the clean file (the first appended record), "{last}" by that minus one
    warns: tuple[str, ...] | None


CASES = [
    Case(
        "wall_time inf",
        lambda r: _append(r, _scalar(wall=float("inf"))),
        {**CLEAN, "b": 21},
        ("b/events.out.tfevents", "record {n}", "wall_time inf", "1 record(s)"),
    ),
    Case(
        "wall_time -inf",
        lambda r: _append(r, _scalar(wall=float("-inf"))),
        {**CLEAN, "b": 21},
        ("b/events.out.tfevents", "record {n}", "wall_time -inf"),
    ),
    Case(
        "wall_time NaN",
        lambda r: _append(r, _scalar(wall=float("nan"))),
        {**CLEAN, "b": 21},
        ("b/events.out.tfevents", "record {n}", "wall_time nan"),
    ),
    Case(
        "wall_time huge",
        lambda r: _append(r, _scalar(wall=1e300)),
        {**CLEAN, "b": 21},
        ("b/events.out.tfevents", "record {n}", "wall_time 1e+300"),
    ),
    Case(
        "wall_time in milliseconds",
        lambda r: _append(r, _scalar(wall=1.7e12)),
        {**CLEAN, "b": 21},
        ("b/events.out.tfevents", "record {n}", "is not a time"),
    ),
    Case(
        "every wall_time inf",
        lambda r: _rewrite_walls(r, float("inf")),
        CLEAN,
        ("b/events.out.tfevents", "record 0", "wall_time inf"),
    ),
    Case("wall_time missing", lambda r: _append(r, _scalar(wall=None)), {**CLEAN, "b": 21}, None),
    Case(
        "half-float tensor out of range",
        lambda r: _append(
            r,
            _event(
                _tensor_value("loss", _field(1, 0, 19) + _field(2, 2, b"") + _field(13, 0, 70_000))
            ),
        ),
        CLEAN,
        ("b/events.out.tfevents", "record {n}", "half_val"),
    ),
    Case(
        "float tensor sent as a varint",
        lambda r: _append(
            r,
            _event(
                _tensor_value("loss", _field(1, 0, 1) + _field(2, 2, b"") + _field(5, 0, 2**40))
            ),
        ),
        CLEAN,
        ("b/events.out.tfevents", "record {n}", "float_val sent with wire type 0"),
    ),
    Case(
        "simple_value sent as a varint",
        lambda r: _append(r, _event(_field(1, 2, b"loss") + _field(2, 0, 2**40))),
        CLEAN,
        ("b/events.out.tfevents", "record {n}", "simple_value sent with wire type 0"),
    ),
    Case(
        "double tensor sent as 32 bits",
        lambda r: _append(
            r,
            _event(
                _tensor_value(
                    "loss", _field(1, 0, 2) + _field(2, 2, b"") + _field(6, 5, b"\x00\x00\x80\x3f")
                )
            ),
        ),
        CLEAN,
        ("b/events.out.tfevents", "record {n}", "double_val"),
    ),
    Case(
        "hparams nested 5000 levels",
        lambda r: _append(r, _hparams_nested(5000)),
        CLEAN,
        ("b/events.out.tfevents", "record {n}", "nested more than 100"),
    ),
    Case("hparams nested 50 levels", lambda r: _append(r, _hparams_nested(50)), CLEAN, None),
    Case(
        "two-element tensor",
        lambda r: _append(
            r,
            _event(
                _tensor_value(
                    "loss",
                    _field(1, 0, 1)
                    + _field(2, 2, _field(2, 2, _field(1, 0, 2)))
                    + _field(5, 2, struct.pack("<2f", 1, 2)),
                )
            ),
        ),
        CLEAN,
        None,
    ),
    Case(
        "truncated last record",
        lambda r: _cut(r, lambda n: n - 10),
        {**CLEAN, "b": 19},
        ("b/events.out.tfevents", "record {last}", "truncated"),
    ),
    Case(
        "truncated in a length field",
        lambda r: _cut(r, lambda n: n - 16 - len(_records(_file(r))[-1]) + 5),
        {**CLEAN, "b": 19},
        ("b/events.out.tfevents", "truncated"),
    ),
    Case(
        "data checksum mismatch",
        lambda r: _flip(r, _offsets(_file(r))[-3] + 14),
        {**CLEAN, "b": 19},
        ("b/events.out.tfevents", "record {n3}", "data checksum mismatch"),
    ),
    Case(
        "length checksum mismatch",
        lambda r: _flip(r, _offsets(_file(r))[-4] + 9),
        {**CLEAN, "b": 16},
        ("b/events.out.tfevents", "record {n4}", "length checksum mismatch"),
    ),
    Case(
        "garbage appended",
        lambda r: _file(r).write_bytes(_file(r).read_bytes() + bytes(range(256)) * 4),
        CLEAN,
        ("b/events.out.tfevents", "truncated"),
    ),
    Case(
        "garbage file",
        lambda r: _file(r).write_bytes(bytes(range(7, 256)) * 40),
        {**CLEAN, "b": 0},
        ("b/events.out.tfevents",),
    ),
    Case("empty file", lambda r: _file(r).write_bytes(b""), {**CLEAN, "b": 0}, None),
    Case(
        "garbage protobuf with a good checksum",
        lambda r: _append(r, b"\xff\xff\xff\xff\x0f"),
        CLEAN,
        ("b/events.out.tfevents", "record {n}", "not a readable event"),
    ),
    Case(
        "step varint longer than 10 bytes",
        lambda r: _append(r, b"\x10" + b"\xff" * 12 + b"\x01"),
        CLEAN,
        ("b/events.out.tfevents", "record {n}", "varint"),
    ),
    Case(
        "tag not UTF-8",
        lambda r: _append(
            r, _event(_field(1, 2, b"lo\xffss") + _field(2, 5, struct.pack("<f", 0.5)))
        ),
        {**CLEAN, "b": 21},
        None,
    ),
    Case("negative step", lambda r: _append(r, _scalar(step=-5)), {**CLEAN, "b": 21}, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_damaged_tensorboard_logs(case: Case, clean_logs: Path, tmp_path: Path) -> None:
    root = tmp_path / "logs"
    shutil.copytree(clean_logs, root)
    count = len(_records(_file(root)))
    case.damage(root)
    outcome = load_isolated(root)
    assert outcome.error is None, outcome.error
    assert outcome.runs == case.runs, outcome.load_warnings()
    if case.warns is None:
        assert outcome.load_warnings() == []
    else:
        numbers = {"{n}": count, "{last}": count - 1, "{n3}": count - 3, "{n4}": count - 4}
        fragments = [f for f in case.warns]
        for name, value in numbers.items():
            fragments = [f.replace(name, str(value)) for f in fragments]
        assert outcome.warned_about(*fragments), outcome.load_warnings()


def test_wall_times_that_are_not_times_leave_the_other_points_timed(
    clean_logs: Path, tmp_path: Path
) -> None:
    """The point with an infinite wall_time has no time; the run's other points keep theirs,
    and `history.collect()` (run in the child) does not fail."""
    import warnings

    import rungroup as rg

    root = tmp_path / "logs"
    shutil.copytree(clean_logs, root)
    _append(root, _scalar(wall=float("inf")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = rg.load(root).history.collect()
    b = history.filter(history["run_id"] == "b")
    assert b["timestamp"].null_count() == 1
    assert b["time"].null_count() == 1
    assert b.height == 21


def test_clean_logs_load_without_warnings(clean_logs: Path) -> None:
    outcome = load_isolated(clean_logs)
    assert outcome.error is None
    assert outcome.runs == CLEAN
    assert outcome.load_warnings() == []
