"""Every history format written so far still loads: version 1 is made here by a small
encoder of its documented layout (docs/store.md), independent of the writer's code."""

from __future__ import annotations

import json
import struct
import warnings
import zlib
from array import array
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import rungroup as rg
from rungroup import store
from rungroup.sources.store.follower import StoreFollower

NAMES = ["loss", "acc", "RGRC in a name"]


def old_record(names: list[str], points: list[tuple[int, float, int, float]]) -> bytes:
    """Format 1: ``"RGRC" | length u32 | crc32(payload) u32 | payload``, the payload as in
    format 2 (names length, names as JSON, count, then the four columns), little-endian."""
    table = json.dumps(names).encode()
    columns = [
        struct.pack(f"<{len(points)}q", *(p[0] for p in points)),
        struct.pack(f"<{len(points)}d", *(p[1] for p in points)),
        struct.pack(f"<{len(points)}I", *(p[2] for p in points)),
        struct.pack(f"<{len(points)}d", *(p[3] for p in points)),
    ]
    payload = struct.pack("<I", len(table)) + table + struct.pack("<I", len(points))
    payload += b"".join(columns)
    return struct.pack("<4sII", b"RGRC", len(payload), zlib.crc32(payload)) + payload


def old_history() -> tuple[bytes, list[tuple[int, float, int, float]]]:
    """Three records, the name table growing as a run logs new metrics."""
    points = [(step, 1.7e9 + step, step % 3, step / 10) for step in range(30)]
    records = [
        old_record(NAMES[:1], [p for p in points[:10] if p[2] == 0]),
        old_record(NAMES, points[10:20]),
        old_record(NAMES, points[20:]),
    ]
    kept = [p for p in points[:10] if p[2] == 0] + points[10:]
    return b"RGHIST\x00\x01" + b"".join(records), kept


def old_run(root: Path, run_id: str = "old") -> Path:
    folder = root / "p" / run_id
    folder.mkdir(parents=True)
    data, _ = old_history()
    (folder / store.HISTORY_FILE).write_bytes(data)
    meta = {
        "format_version": 1,
        "id": run_id,
        "name": run_id,
        "project": "p",
        "state": "finished",
        "created_at": "2023-11-14T22:13:20+00:00",
        "config": {},
        "summary": {},
        "tags": [],
    }
    (folder / store.META_FILE).write_text(json.dumps(meta))
    return folder


def test_a_version_1_history_decodes_point_for_point() -> None:
    data, points = old_history()
    decoded = store.decode_history(data, "h")
    assert decoded.problems == [] and decoded.version == 1
    assert decoded.names == NAMES
    assert decoded.column("steps").tolist() == [p[0] for p in points]
    assert decoded.column("walls").tolist() == [p[1] for p in points]
    names = [decoded.names[i] for i in decoded.column("metric_indices").tolist()]
    assert names == [NAMES[p[2]] for p in points]
    assert decoded.column("values").tolist() == [p[3] for p in points]


def test_a_store_of_version_1_runs_loads_beside_new_runs(tmp_path: Path) -> None:
    old_run(tmp_path)
    with rg.init(dir=tmp_path, project="p", id="new") as run:
        run.log({"loss": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error", rg.LoadWarning)
        runs = rg.load(tmp_path)
    history = runs.history.collect()
    old = history.filter(pl.col("run_id") == "old").sort("step")
    _, points = old_history()
    assert old["step"].to_list() == [p[0] for p in points]
    assert old["value"].to_list() == [p[3] for p in points]
    np.testing.assert_allclose(old["time"].to_numpy(), [p[1] - 1.7e9 for p in points])
    summary = runs.runs.filter(pl.col("id") == "old")
    assert summary["summary.loss"].item() == 2.7  # the last value logged for step 27
    assert history.filter(pl.col("run_id") == "new")["value"].to_list() == [1.0]
    assert (tmp_path / "p" / "new" / store.HISTORY_FILE).read_bytes()[:8] == b"RGHIST\x00\x02"


def test_a_follower_reads_a_version_1_history_as_it_grows(tmp_path: Path) -> None:
    folder = old_run(tmp_path)
    data, points = old_history()
    path = folder / store.HISTORY_FILE
    second = data.find(b"RGRC", 9)
    path.write_bytes(data[: second + 5])  # one record and a bit
    follower = StoreFollower(tmp_path)
    first, _ = follower.poll()
    assert first.history.collect().height == 4
    path.write_bytes(data)  # the rest, read from where the last poll stopped
    runs, changed = follower.poll()
    assert changed
    assert sorted(runs.history.collect()["step"].to_list()) == [p[0] for p in points]


@pytest.mark.parametrize("version", [1, 2])
def test_offset_reads_find_the_version_from_the_record_markers(version: int) -> None:
    if version == 1:
        data, _ = old_history()
        first_end = data.find(b"RGRC", 9)
    else:
        records = [
            store.encode_record(
                ["a"],
                array("q", [i]),
                array("d", [0.0]),
                array("I", [0]),
                array("d", [1.0]),
                sequence=i,
            )
            for i in range(3)
        ]
        data = store.HISTORY_MAGIC + b"".join(records)
        first_end = 8 + len(records[0])
    whole = store.decode_history(data, "h")
    rest = store.decode_history(data[first_end:], "h", offset=first_end)
    assert rest.version == version and rest.problems == []
    assert len(rest) == len(whole) - len(whole.records[0].values)
