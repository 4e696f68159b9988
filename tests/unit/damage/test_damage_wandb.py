"""W&B offline run files, damaged: every case loads in a child process with a time limit.

The clean runs are written by wandb itself in offline mode: runs `a`, `b`, `c` with config
`lr` and `loss`, `acc` at 10 steps (20 points each). A case appends records to run `b`'s
`.wandb` file (built with wandb's own protobuf classes, framed in LevelDB's log format as
wandb frames them) or damages its bytes. Every file's mtime is then set a day back, so that
no run counts as still being written.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from damage_runner import load_isolated

CLEAN = {"a": 20, "b": 20, "c": 20}
BLOCK = 32768


@pytest.fixture(scope="module")
def clean_wandb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wandb-clean")
    script = f"""
import wandb
for number, run_id in enumerate(["a", "b", "c"]):
    run = wandb.init(project="damage", id=run_id, dir={str(root)!r},
                     config={{"lr": 0.1 * (number + 1)}})
    for step in range(10):
        run.log({{"loss": 1.0 / (step + 1 + number), "acc": step / 10}}, step=step)
    run.finish()
"""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    return root / "wandb"


def _file(root: Path, run: str = "b") -> Path:
    (path,) = root.glob(f"offline-run-*-{run}/run-{run}.wandb")
    return path


def _count(path: Path) -> int:
    from rungroup.sources.wandb.offline import read_records

    return len(read_records(path)[0])


def _append(root: Path, *records: Any) -> None:
    """Append protobuf records in LevelDB's log format (full / first / middle / last)."""
    path = _file(root)
    data = bytearray(path.read_bytes())
    for record in records:
        payload = record.SerializeToString() if hasattr(record, "SerializeToString") else record
        first = True
        while True:
            left = BLOCK - len(data) % BLOCK
            if left < 7:
                data += b"\0" * left
                left = BLOCK
            piece = payload[: left - 7]
            payload = payload[len(piece) :]
            kind = (1 if not payload else 2) if first else (4 if not payload else 3)
            crc = zlib.crc32(piece, zlib.crc32(bytes([kind])))
            data += struct.pack("<IHB", crc, len(piece), kind) + piece
            first = False
            if not payload:
                break
    path.write_bytes(bytes(data))


def _history(*items: tuple[str, str]) -> Any:
    from wandb.proto import wandb_internal_pb2 as pb

    record = pb.Record()
    for key, value in items:
        item = record.history.item.add()
        item.key = key
        item.value_json = value
    return record


def _row(step: str = "10", **extra: str) -> Any:
    items = {"loss": "0.5", "_step": step, "_runtime": "1.5", "_timestamp": "1700000000.5"}
    return _history(*{**items, **extra}.items())


def _config(key: str, value_json: str) -> Any:
    from wandb.proto import wandb_internal_pb2 as pb

    record = pb.Record()
    item = record.config.update.add()
    item.key = key
    item.value_json = value_json
    return record


def _start(seconds: int) -> Any:
    from wandb.proto import wandb_internal_pb2 as pb

    record = pb.Record()
    record.run.run_id = "b"
    record.run.start_time.seconds = seconds
    return record


def _cut(root: Path, drop: int) -> None:
    path = _file(root)
    path.write_bytes(path.read_bytes()[:-drop])


def _flip_last_chunk(root: Path) -> None:
    path = _file(root)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@dataclass(frozen=True)
class Case:
    name: str
    damage: Callable[[Path], None]
    runs: dict[str, int]
    #: fragments one LoadWarning must hold; "{n}" is the first appended record's number
    warns: tuple[str, ...] | None


CASES = [
    Case(
        "_step NaN",
        lambda r: _append(r, _row("NaN")),
        CLEAN,
        ("run-b.wandb", "record {n}", "_step nan"),
    ),
    Case(
        "_step Infinity",
        lambda r: _append(r, _row("Infinity")),
        CLEAN,
        ("run-b.wandb", "record {n}", "_step inf"),
    ),
    Case(
        "_step huge",
        lambda r: _append(r, _row("1e300")),
        CLEAN,
        ("run-b.wandb", "record {n}", "_step 1e+300"),
    ),
    Case(
        "_step -huge",
        lambda r: _append(r, _row("-1e30")),
        CLEAN,
        ("run-b.wandb", "record {n}", "_step -1e+30"),
    ),
    Case(
        "_timestamp huge",
        lambda r: _append(r, _row(_timestamp="1e300")),
        {**CLEAN, "b": 21},
        ("run-b.wandb", "record {n}", "_timestamp 1e+300"),
    ),
    Case(
        "_timestamp Infinity",
        lambda r: _append(r, _row(_timestamp="Infinity")),
        {**CLEAN, "b": 21},
        ("run-b.wandb", "record {n}", "_timestamp inf"),
    ),
    Case(
        "_timestamp NaN",
        lambda r: _append(r, _row(_timestamp="NaN")),
        {**CLEAN, "b": 21},
        ("run-b.wandb", "record {n}", "_timestamp nan"),
    ),
    Case(
        "_timestamp in milliseconds",
        lambda r: _append(r, _row(_timestamp="1700000000500")),
        {**CLEAN, "b": 21},
        ("run-b.wandb", "record {n}", "is not a time"),
    ),
    Case(
        "_runtime Infinity",
        lambda r: _append(r, _row(_runtime="Infinity")),
        {**CLEAN, "b": 21},
        ("run-b.wandb", "record {n}", "_runtime inf"),
    ),
    Case(
        "start time huge",
        lambda r: _append(r, _start(10**15)),
        CLEAN,
        ("run-b.wandb", "start time", "not a time"),
    ),
    Case(
        "start time negative huge",
        lambda r: _append(r, _start(-(10**15))),
        CLEAN,
        ("run-b.wandb", "start time", "not a time"),
    ),
    Case(
        "value huge integer",
        lambda r: _append(r, _row(loss="1" + "0" * 400)),
        CLEAN,
        ("run-b.wandb", "record {n}", "not a readable W&B record"),
    ),
    Case(
        "config lone surrogate",
        lambda r: _append(r, _config("opt", '{"name\\ud800": "x"}')),
        CLEAN,
        ("run-b.wandb", "lone surrogate"),
    ),
    Case(
        "config nested 5000 levels",
        lambda r: _append(r, _config("deep", _nested(5000))),
        CLEAN,
        ("run-b.wandb", "nested more than 100"),
    ),
    Case(
        "history value nested 5000 levels",
        lambda r: _append(r, _row(deep=_nested(5000))),
        {**CLEAN, "b": 21},
        ("run-b.wandb", "record {n}", "nested more than 100"),
    ),
    Case(
        "mixed config types",
        lambda r: _append(r, _config("lr", '"fast"')),
        CLEAN,
        ("config.lr", "different types"),
    ),
    Case("truncated end", lambda r: _cut(r, 10), CLEAN, ("run-b.wandb", "truncated")),
    Case(
        "checksum mismatch in the last chunk",
        _flip_last_chunk,
        CLEAN,
        ("run-b.wandb", "checksum mismatch"),
    ),
    Case(
        "garbage appended",
        lambda r: _file(r).write_bytes(_file(r).read_bytes() + bytes(range(256)) * 4),
        CLEAN,
        ("run-b.wandb",),
    ),
    Case(
        "garbage record with a good checksum",
        lambda r: _append(r, b"\x12\xff\xff\xff\xff\x0f"),
        CLEAN,
        ("run-b.wandb", "record {n}", "not a readable W&B record"),
    ),
    Case(
        "wrong header",
        lambda r: _file(r).write_bytes(b":W&X" + _file(r).read_bytes()[4:]),
        {"a": 20, "c": 20},
        ("run-b.wandb", "no ':W&B' header"),
    ),
    Case(
        "empty file",
        lambda r: _file(r).write_bytes(b""),
        {"a": 20, "c": 20},
        ("run-b.wandb", "not read"),
    ),
    Case(
        "history row split over a block boundary",
        lambda r: _append(r, _row(note=json.dumps("x" * 40_000))),
        {**CLEAN, "b": 21},
        None,
    ),
]


def _age(root: Path) -> None:
    old = time.time() - 86_400
    for path in root.rglob("*"):
        os.utime(path, (old, old), follow_symlinks=False)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_damaged_wandb_runs(case: Case, clean_wandb: Path, tmp_path: Path) -> None:
    root = tmp_path / "wandb"
    shutil.copytree(clean_wandb, root, symlinks=True)
    count = _count(_file(root))
    case.damage(root)
    _age(root)
    outcome = load_isolated(root)
    assert outcome.error is None, outcome.error
    assert outcome.runs == case.runs, outcome.load_warnings()
    if case.warns is None:
        assert outcome.load_warnings() == []
    else:
        fragments = [f.replace("{n}", str(count)) for f in case.warns]
        assert outcome.warned_about(*fragments), outcome.load_warnings()


def test_clean_runs_load_without_warnings(clean_wandb: Path, tmp_path: Path) -> None:
    root = tmp_path / "wandb"
    shutil.copytree(clean_wandb, root, symlinks=True)
    _age(root)
    outcome = load_isolated(root)
    assert outcome.error is None
    assert outcome.runs == CLEAN
    assert outcome.load_warnings() == []
