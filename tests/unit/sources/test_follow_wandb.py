"""Following W&B offline runs while wandb writes them: .wandb files tailed from the last
complete record, and every poll equal to a fresh `load_wandb` of the same bytes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from follow_helpers import assert_same

import rungroup as rg
from rungroup.sources.wandb.follower import WandbFollower
from rungroup.sources.wandb.offline import load_wandb

SCRIPT = """
import pathlib, sys, time, wandb
root = pathlib.Path(sys.argv[1])
run = wandb.init(project="live", group="adam", config={"lr": 0.1}, dir=str(root),
                 settings=wandb.Settings(x_disable_stats=True, console="off"))
for step in range(10):
    run.log({"loss": 1.0 / (step + 1), "acc": step / 10}, step=step)
(root / "phase1").write_text("")
while not (root / "go").exists():
    time.sleep(0.05)
for step in range(10, 20):
    run.log({"loss": 1.0 / (step + 1)}, step=step)
run.summary["best"] = 0.5
run.finish()
"""


def settle(follower: WandbFollower, source: Path, points: int, timeout: float = 60) -> rg.Runs:
    """Poll until `points` points are in and the file stopped growing; check against a
    fresh load of the same bytes."""
    deadline = time.monotonic() + timeout
    while True:
        runs, _ = follower.poll()
        count = runs.history.select(pl.len()).collect().item()
        if count >= points:
            fresh = load_wandb(source)
            again, changed = follower.poll()
            if not changed:
                assert_same(again, fresh, ignore=["runtime"])
                return again
        assert time.monotonic() < deadline, f"{count} of {points} points after {timeout} s"
        time.sleep(0.1)


@pytest.mark.slow  # wandb starts its service (several seconds)
def test_a_run_being_written_is_followed_and_equals_fresh_loads(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    writer = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "phase1").exists():
            assert writer.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        source = tmp_path / "wandb"
        follower = WandbFollower(source)
        # wandb holds the row of the last step until the next step is logged: 9 rows of 2
        runs = settle(follower, source, 18)
        assert runs.runs["state"].to_list() == ["running"]
        (file,) = source.glob("offline-run-*/run-*.wandb")
        offset = follower.offsets[file]
        (tmp_path / "go").write_text("")
        assert writer.wait(timeout=120) == 0
    finally:
        writer.kill()
        writer.wait()
    runs, changed = follower.poll()
    assert changed and follower.bytes_read == file.stat().st_size - offset  # only new bytes
    assert runs.runs["state"].to_list() == ["finished"]
    assert runs.runs["summary.best"].to_list() == [0.5]
    assert runs.history.select(pl.len()).collect().item() == 30
    assert_same(runs, load_wandb(source), ignore=["runtime"])

    # The same bytes arriving in pieces that cut records (and blocks) anywhere.
    data = file.read_bytes()
    copy = tmp_path / "copy" / file.parent.name / file.name
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"")
    piecewise = WandbFollower(tmp_path / "copy")
    for cut in (3, 100, 1001, len(data) // 2, len(data) - 5, len(data)):
        with copy.open("ab") as handle:
            handle.write(data[copy.stat().st_size : cut])
        runs, _ = piecewise.poll()
    assert_same(runs, load_wandb(tmp_path / "copy"), ignore=["runtime"])


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _item(key: str, value: str) -> bytes:
    return _field(1, key.encode()) + _field(16, value.encode())


def _log(records: list[bytes]) -> bytes:
    """LevelDB's log format after W&B's header: 32 KiB blocks, records split into
    first / middle / last chunks where they cross a block."""
    import struct
    import zlib

    out = bytearray(b":W&B\xe1\xbe\x00")
    for record in records:
        rest = record
        first = True
        while True:
            left = 32768 - len(out) % 32768
            if left < 7:
                out += b"\0" * left
                continue
            piece, rest = rest[: left - 7], rest[left - 7 :]
            kind = (1 if not rest else 2) if first else (4 if not rest else 3)
            crc = zlib.crc32(piece, zlib.crc32(bytes([kind])))
            out += struct.pack("<IHB", crc, len(piece), kind) + piece
            first = False
            if not rest:
                break
    return bytes(out)


def test_records_across_blocks_arriving_in_pieces(tmp_path: Path) -> None:
    run = _field(
        17, _field(1, b"abc") + _field(3, b"live") + _field(4, _field(1, _item("lr", "0.1")))
    )
    notes = _field(17, _field(9, b"n" * 70_000))  # a record over three blocks
    rows = [
        _field(
            2, _field(1, _item("loss", repr(1.0 / (step + 1)))) + _field(2, b"\x08" + _varint(step))
        )
        for step in range(400)
    ]
    data = _log([run, *rows[:200], notes, *rows[200:]])
    assert len(data) > 2 * 32768
    path = tmp_path / "wandb" / "offline-run-x-abc" / "run-abc.wandb"
    path.parent.mkdir(parents=True)
    path.write_bytes(data[:7])
    follower = WandbFollower(tmp_path / "wandb")
    for cut in [*range(7, len(data), 4099), len(data)]:
        with path.open("ab") as handle:
            handle.write(data[path.stat().st_size : cut])
        runs, _ = follower.poll()
        assert_same(runs, load_wandb(tmp_path / "wandb"), ignore=["runtime"])
    assert runs.history.select(pl.len()).collect().item() == 400
    assert runs.runs["config.lr"].to_list() == [0.1]
