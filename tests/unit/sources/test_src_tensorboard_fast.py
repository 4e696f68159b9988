"""TensorBoard's fast first read (files decoded together, frames found in numpy, one CRC pass
per batch) against the general path it short-cuts: same frames, same warnings, on files
written by tensorboardX and tensorboard's own writer, clean and damaged."""

from __future__ import annotations

import math
import shutil
import struct
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from rungroup.runs import LoadWarning
from rungroup.sources import castagnoli
from rungroup.sources.castagnoli import crc32c, frames_intact, masked_crc32c_many
from rungroup.sources.tensorboard import decode, events, layout, records
from rungroup.sources.tensorboard.events import load_tensorboard

TAGS = ("loss", "acc", "a/tag/longer/than/sixteen/bytes", "grad_norm", "ünïcode")


def _write_logs(root: Path) -> None:
    """Runs as tensorboardX and tensorboard write them: mixed tags, steps of 1 to 5 varint
    bytes, two files in one run, non-finite values, hparams, TF2 tensor scalars mixed with
    simple values in one file, and Keras-style train/ validation/ subfolders."""
    from tensorboardX import SummaryWriter

    for part in range(2):  # run a: two event files
        with SummaryWriter(str(root / "runs" / "a"), filename_suffix=f".{part}") as w:
            for step in [*range(part * 140, part * 140 + 140), 2**14 + part, 2**21, 2**28 + 3]:
                for k, tag in enumerate(TAGS):
                    w.add_scalar(tag, 1.0 / (1 + step + k), step)
            w.add_scalar("odd", math.nan, 3)
            w.add_scalar("odd", math.inf, 4)
    with SummaryWriter(str(root / "runs" / "b")) as w:
        for step in range(50):
            w.add_scalar("loss", 0.5 + step, step)
        w.add_hparams({"lr": 0.01, "opt": "adam"}, {"hparam/loss": 0.5})
    _tf2_mixed(root / "runs" / "c")
    for part in ("train", "validation"):
        with SummaryWriter(str(root / "runs" / "d" / part)) as w:
            for step in range(30):
                w.add_scalar("epoch_loss", 1.0 / (step + 1), step)


def _tf2_mixed(folder: Path) -> None:
    """TF2's tensor scalars (float32 and float64) and simple values in one file."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata
    from tensorboard.plugins.scalar import summary as scalar_summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    writer = EventFileWriter(str(folder))
    start = time.time()
    for step in range(40):
        tensor = scalar_summary.scalar_pb("tloss", np.float32(1.0 / (step + 1)))
        writer.add_event(event_pb2.Event(wall_time=start + step, step=step, summary=tensor))
        simple = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="s", simple_value=step)])
        writer.add_event(event_pb2.Event(wall_time=start + step, step=step, summary=simple))
        doubles = summary_pb2.Summary(
            value=[
                summary_pb2.Summary.Value(
                    tag="lr",
                    tensor=tensor_util.make_tensor_proto(np.float64(0.1 * step)),
                    metadata=metadata.create_summary_metadata("", ""),
                )
            ]
        )
        writer.add_event(event_pb2.Event(wall_time=start + step, step=step, summary=doubles))
    writer.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tbfast")
    _write_logs(root)
    return root


def _load(source: Path, **options: Any) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LoadWarning)
        runs = load_tensorboard(source, progress_bar=False, **options)
    said = sorted(str(w.message) for w in caught if issubclass(w.category, LoadWarning))
    return runs.runs, runs.history.collect(), said


def _same(fast: tuple[Any, ...], slow: tuple[Any, ...]) -> None:
    """Equal runs, warnings and points (values bit for bit, dtypes). The reader has always
    put a file's simple scalars before its other points, so the points are compared in one
    order."""
    assert_frame_equal(fast[0], slow[0], check_exact=True)
    order = [pl.col("run_id", "metric").cast(pl.String), "step", "time", "value"]
    assert_frame_equal(
        fast[1].sort(order, maintain_order=True),
        slow[1].sort(order, maintain_order=True),
        check_exact=True,
    )
    assert fast[2] == slow[2]


def _general_load(source: Path, **options: Any) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Nothing but the general path: the per-record Python frame walk, the per-record numpy
    CRC, the protobuf walk for every record, file by file."""
    patch = pytest.MonkeyPatch()
    try:
        patch.setattr(records, "_candidate_frames", lambda buf: (np.zeros(0, np.int64),) * 3)
        patch.setattr(
            decode, "simple_values", lambda d, r, *_: (np.zeros(len(r[0]), dtype=np.bool_), None)
        )
        patch.setattr(records, "frames_intact", lambda *_: None)
        patch.setattr(decode, "frames_intact", lambda *_: None)
        patch.setattr(decode, "_decode_together", lambda *_: False)
        return _load(source, **options)
    finally:
        patch.undo()


@pytest.mark.parametrize("check_crc", [True, False])
def test_fast_read_equals_general_path(logs: Path, check_crc: bool) -> None:
    fast = _load(logs / "runs", check_crc=check_crc)
    _same(fast, _general_load(logs / "runs", check_crc=check_crc))
    runs, history, said = fast
    assert said == []
    assert set(runs["id"]) == {"a", "b", "c", "d/train", "d/validation"}
    a = history.filter(pl.col("run_id") == "a")
    assert set(a["metric"].cast(pl.String)) == {*TAGS, "odd"}
    assert a.height == 2 * (143 * len(TAGS) + 2)
    assert 2**28 + 3 in a["step"].to_list()  # a 5-byte varint step: the general path's
    odd = a.filter(pl.col("metric") == "odd")["value"].to_list()
    assert math.isnan(odd[0]) and odd[1] == math.inf
    c = history.filter(pl.col("run_id") == "c")
    assert sorted(set(c["metric"].cast(pl.String))) == ["lr", "s", "tloss"]
    assert c.height == 120
    assert runs.filter(pl.col("id") == "b")["config.opt"].to_list() == ["adam"]


@pytest.mark.parametrize("batch", [1, 30_000])
def test_batches_of_any_size(logs: Path, monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    """A run's files split over batches (or one file a batch) read the same."""
    whole = _load(logs / "runs")
    monkeypatch.setattr(events, "BATCH_BYTES", batch)
    _same(_load(logs / "runs"), whole)


def test_without_the_c_crc(logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No google-crc32c: the per-record numpy check, same result, damage still found."""
    whole = _load(logs / "runs")
    monkeypatch.setattr(castagnoli, "_extend", None)
    _same(_load(logs / "runs"), whole)
    root = tmp_path / "runs"
    shutil.copytree(logs / "runs", root)
    path = sorted((root / "a").glob("events.out.tfevents.*"))[0]
    data = bytearray(path.read_bytes())
    data[_record_offsets(path)[40] + 20] ^= 1
    path.write_bytes(bytes(data))
    said = _load(root)[2]
    assert said == [f"{path}: record 40: data checksum mismatch; record skipped"]


def test_fast_read_with_subfolder_prefixes(logs: Path) -> None:
    source = logs / "runs" / "{name}"
    fast = _load(source)
    _same(fast, _general_load(source))
    assert "train/epoch_loss" in set(fast[1]["metric"].cast(pl.String))


def test_clean_files_take_the_fast_path(logs: Path) -> None:
    """The batch decode and the one-pass CRC accept clean files (else the speed is gone)."""
    files = sorted((logs / "runs" / "a").glob("events.out.tfevents.*"))
    batch: list[decode.Pending] = [
        (decode.Scalars(), path, "", path.read_bytes()) for path in files
    ]
    assert decode._decode_together(batch, True)
    data = files[0].read_bytes()
    buf = np.frombuffer(data, dtype=np.uint8)
    heads = records.frame_heads(data, buf, files[0])
    lengths = records.stored(buf, heads, 8, np.uint64).astype(np.int64)
    assert frames_intact(buf, heads, lengths) is True
    starts = heads + 12
    done, _ = layout.simple_values(data, (starts, starts + lengths), "", [])
    # all but the file_version event, step 0's (no step field) and the 5-byte steps
    assert int((~done).sum()) == 1 + 2 * len(TAGS)


def _record_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    out, pos = [], 0
    while pos + 12 <= len(data):
        out.append(pos)
        pos += 16 + struct.unpack_from("<Q", data, pos)[0]
    return out


@pytest.mark.parametrize(
    "damage", ["data byte", "length byte", "length crc byte", "data crc byte", "truncated tail"]
)
@pytest.mark.parametrize("check_crc", [True, False])
def test_damaged_files_same_as_general_path(
    logs: Path, tmp_path: Path, damage: str, check_crc: bool
) -> None:
    root = tmp_path / "runs"
    shutil.copytree(logs / "runs", root)
    path = sorted((root / "a").glob("events.out.tfevents.*"))[0]
    data = bytearray(path.read_bytes())
    at = _record_offsets(path)[300]
    if damage == "truncated tail":
        del data[-7:]
    else:
        offset = {"data byte": 20, "length byte": 0, "length crc byte": 9, "data crc byte": -1}
        where = at + offset[damage] if offset[damage] >= 0 else _record_offsets(path)[301] - 1
        data[where] ^= 0x5A
    path.write_bytes(bytes(data))
    fast = _load(root, check_crc=check_crc)
    _same(fast, _general_load(root, check_crc=check_crc))
    _, history, said = fast
    if check_crc or damage in ("length byte", "truncated tail"):
        assert said and all(path.name in message for message in said)
    if check_crc and damage != "truncated tail":
        assert any("record 300" in message for message in said)
    # the other runs load in full
    clean = _load(logs / "runs")[1]
    for run in ("b", "c", "d"):
        assert_frame_equal(
            history.filter(pl.col("run_id") == run).with_columns(
                pl.col("run_id", "metric").cast(pl.String)
            ),
            clean.filter(pl.col("run_id") == run).with_columns(
                pl.col("run_id", "metric").cast(pl.String)
            ),
            check_exact=True,
        )


# --- the pieces against plain implementations ---------------------------------------------


def _frame(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return (
        header
        + struct.pack("<I", _masked(crc32c(header)))
        + payload
        + struct.pack("<I", _masked(crc32c(payload)))
    )


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# payloads rich in the bytes the frame finder looks for (zeros, wall_time's key 0x09)
_PAYLOAD = st.binary(max_size=80) | st.lists(
    st.sampled_from([0, 0, 0, 9, 9, 0x10, 0x2A, 255]), max_size=80
).map(bytes)


@settings(max_examples=150, deadline=None)
@given(
    payloads=st.lists(_PAYLOAD | st.binary(min_size=4090, max_size=4200), max_size=12),
    flip=st.none() | st.tuples(st.integers(min_value=0), st.integers(1, 255)),
)
def test_frames_intact_against_plain_crc(
    payloads: list[bytes], flip: tuple[int, int] | None
) -> None:
    data = bytearray(b"".join(_frame(p) for p in payloads))
    lengths = np.asarray([len(p) for p in payloads], dtype=np.int64)
    heads = np.concatenate([[0], np.cumsum(lengths + 16)[:-1]]).astype(np.int64)[: len(payloads)]
    if flip is not None and data:
        data[flip[0] % len(data)] ^= flip[1]  # one damaged byte: a burst a CRC always sees
    buf = np.frombuffer(bytes(data), dtype=np.uint8)
    intact = all(
        _masked(crc32c(bytes(buf[h : h + 8]))) == struct.unpack_from("<I", buf, h + 8)[0]
        and _masked(crc32c(bytes(buf[h + 12 : h + 12 + n])))
        == struct.unpack_from("<I", buf, h + 12 + n)[0]
        for h, n in zip(heads.tolist(), lengths.tolist(), strict=True)
    )
    assert frames_intact(buf, heads, lengths) is intact
    many = masked_crc32c_many(buf, heads + 12, lengths)
    plain = [
        _masked(crc32c(bytes(buf[h + 12 : h + 12 + n])))
        for h, n in zip(heads, lengths, strict=True)
    ]
    assert many.tolist() == plain


def test_frames_intact_without_the_c_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(castagnoli, "_extend", None)
    data = _frame(b"abc")
    buf = np.frombuffer(data, dtype=np.uint8)
    assert frames_intact(buf, np.zeros(1, np.int64), np.full(1, 3)) is None


def _walk(data: bytes) -> tuple[list[int], list[str]]:
    """The frame walk as it was: one Python step per record."""
    heads: list[int] = []
    said: list[str] = []
    pos = 0
    while pos + 12 <= len(data):
        end = pos + 12 + struct.unpack_from("<Q", data, pos)[0]
        if end + 4 > len(data):
            said.append(f"record {len(heads)} is truncated (file still being written?)")
            break
        heads.append(pos)
        pos = end + 4
    else:
        if pos != len(data):
            said.append(f"record {len(heads)} is truncated")
    return heads, said


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists((_PAYLOAD).map(lambda p: b"\x09" + p) | _PAYLOAD, max_size=30),
    cut=st.integers(min_value=0, max_value=40),
)
def test_frame_heads_against_the_python_walk(payloads: list[bytes], cut: int) -> None:
    data = b"".join(_frame(p) for p in payloads)
    data = data[: max(len(data) - cut, 0)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LoadWarning)
        heads = records.frame_heads(data, np.frombuffer(data, dtype=np.uint8), Path("f"))
    want, said = _walk(data)
    assert heads.tolist() == want
    messages = [str(w.message) for w in caught]
    assert len(messages) == len(said)
    assert all(m.startswith(f"f: {s}") for m, s in zip(messages, said, strict=True))
