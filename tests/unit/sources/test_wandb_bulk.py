"""W&B files decoded in bulk (`wandb/bulk.py`) against the general record-by-record decoder:
the same runs, history and warnings, bit for bit, on files written by the real wandb client,
and every file the bulk path cannot vouch for left to the general decoder."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import rungroup as rg
from rungroup.sources.wandb import bulk, offline

pytestmark = pytest.mark.slow  # each run written by wandb costs about a second

SCRIPT = """
import math, wandb
root = {root!r}
run = wandb.init(project="bulk", name="kinds", dir=root, group="g", config={{"lr": 0.1}})
run.log({{"loss": 1.0, "nan": float("nan"), "inf": math.inf, "ninf": -math.inf, "zero": -0.0,
          "int": 7, "big": 12345678901234567890, "tiny": 5e-324, "flag": True,
          "text": "hello", "nested": {{"a": 1.5, "b": {{"c": 2}}}}, "neg": -3}})
run.log({{"loss": 0.5, "only_here": 1e300}})
run.summary["best"] = 0.25
run.log({{"loss": 0.25}})
run.summary["loss"] = 99.0
run.log({{"loss": 0.125}})
run.finish()
run = wandb.init(project="bulk", name="stepped", dir=root)
for step in (0, 5, 9, 9, 20):
    run.log({{"m": step * 0.1, "train/acc": step / 3}}, step=step)
run.log({{"m": 1.0}}, step=21, commit=False)
run.log({{"other": 2.0}}, step=21)
run.finish(exit_code=2)
run = wandb.init(project="bulk", name="long", dir=root)
for step in range(2500):
    run.log({{"m0": step * 0.5, "m1": -step, "m2": step / 7, "m3": 1 / (step + 1)}})
run.finish()
run = wandb.init(project="bulk", name="odd", dir=root, config={{"big": "y" * 70000}})
for step in range(300):
    row = {{"m": step / 3, "line" + chr(10) + "break": step, "deep": {{"a": {{"b": step}}}}}}
    if step % 7 == 0:
        row["note"] = "x" * 300
    run.log(row)
run.finish()
"""


@pytest.fixture(scope="module")
def wandb_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wandb-bulk")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    subprocess.run(
        [sys.executable, "-c", SCRIPT.format(root=str(root))], check=True, env=env, timeout=300
    )
    return root / "wandb"


def _load(source: Path, *, fast: bool) -> tuple[rg.Runs, list[str]]:
    original = bulk.read_runs
    if not fast:
        bulk.read_runs = lambda datas, paths: [None] * len(datas)  # type: ignore[assignment]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runs = rg.load_wandb(source, progress_bar=False).collect()
    finally:
        bulk.read_runs = original  # type: ignore[assignment]
    return runs, sorted(str(w.message) for w in caught)


def _assert_same(source: Path) -> rg.Runs:
    fast, fast_warnings = _load(source, fast=True)
    slow, slow_warnings = _load(source, fast=False)
    assert fast.runs.equals(slow.runs, null_equal=True)
    fast_history, slow_history = fast.history.collect(), slow.history.collect()
    assert fast_history.schema == slow_history.schema
    assert fast_history.equals(slow_history, null_equal=True)
    # bit for bit: NaN, infinities and -0.0 included
    assert np.array_equal(
        fast_history["value"].to_numpy().view(np.uint64),
        slow_history["value"].to_numpy().view(np.uint64),
    )
    assert fast_warnings == slow_warnings
    return fast


def _decoded_in_bulk(source: Path) -> list[bool]:
    files = offline._find_files(source)
    return [run is not None for run in bulk.read_runs([f.read_bytes() for f in files], files)]


def test_runs_written_by_wandb_are_decoded_in_bulk_as_the_general_decoder_does(
    wandb_runs: Path,
) -> None:
    assert all(_decoded_in_bulk(wandb_runs))  # the bulk path, not the fallback, was tested
    runs = _assert_same(wandb_runs)
    history = runs.history.collect()
    kinds = runs.runs.filter(pl.col("name") == "kinds")
    assert kinds["summary.best"][0] == 0.25
    # set by hand, then logged again: the summary follows the last logged value, as in W&B
    assert kinds["summary.loss"][0] == 0.125
    values = history.filter(pl.col("run_id") == kinds["id"][0])
    named = dict(zip(values["metric"].cast(pl.String), values["value"], strict=False))
    assert math.isnan(named["nan"]) and named["inf"] == math.inf and named["ninf"] == -math.inf
    assert named["flag"] == 1.0 and named["nested.b.c"] == 2.0 and "text" not in named
    assert named["big"] == 12345678901234567890.0 and named["tiny"] == 5e-324


def test_steps_given_to_log_are_the_steps(wandb_runs: Path) -> None:
    runs = _assert_same(wandb_runs)
    stepped = runs.runs.filter(pl.col("name") == "stepped")
    history = runs.history.collect().filter(pl.col("run_id") == stepped["id"][0])
    # wandb makes one row of the two logs at step 9, and of the two at step 21
    assert history.filter(pl.col("metric") == "m")["step"].to_list() == [0, 5, 9, 20, 21]
    assert stepped["state"][0] == "failed"


def test_messages_laid_out_otherwise_are_walked_field_by_field(
    wandb_runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items of 128 bytes or more, a key holding a 0x0A byte, a record of 70 KB in three
    fragments: the messages the candidate walk cannot tile go to the field walk, the same
    runs come out."""
    walked: list[int] = []
    original = bulk._walk_fields

    def spy(buf: Any, start: Any, end: Any, rows: Any, which: Any, *rest: Any) -> Any:
        walked.append(int(which.size))
        return original(buf, start, end, rows, which, *rest)

    monkeypatch.setattr(bulk, "_walk_fields", spy)
    assert all(_decoded_in_bulk(wandb_runs))
    assert 0 < sum(walked) < 1000  # some messages, not most
    runs = _assert_same(wandb_runs)
    odd = runs.runs.filter(pl.col("name") == "odd")
    assert odd["config.big"][0] == "y" * 70000
    history = runs.history.collect().filter(pl.col("run_id") == odd["id"][0])
    assert history.filter(pl.col("metric") == "line\nbreak")["value"].to_list() == list(
        map(float, range(300))
    )
    assert history.filter(pl.col("metric") == "deep.a.b").height == 300


def test_a_long_run_across_many_blocks(wandb_runs: Path) -> None:
    runs = _assert_same(wandb_runs)
    long = runs.runs.filter(pl.col("name") == "long")["id"][0]
    assert runs.history.collect().filter(pl.col("run_id") == long).height == 4 * 2500


@pytest.mark.parametrize("damage", ["checksum", "truncated", "garbage record", "header"])
def test_a_damaged_file_goes_to_the_general_decoder_and_the_others_stay_in_bulk(
    wandb_runs: Path, tmp_path: Path, damage: str
) -> None:
    shutil.copytree(wandb_runs, tmp_path / "wandb")
    files = offline._find_files(tmp_path / "wandb")
    victim = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    if damage == "checksum":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncated":
        del data[len(data) - 100 :]
    elif damage == "garbage record":
        data[40_000:40_400] = os.urandom(400)
    else:
        data[:4] = b"XXXX"
    victim.write_bytes(bytes(data))
    decoded = dict(zip(files, _decoded_in_bulk(tmp_path / "wandb"), strict=True))
    assert decoded.pop(victim) is False
    assert all(decoded.values())
    _assert_same(tmp_path / "wandb")


def test_a_file_the_bulk_path_does_not_vouch_for_is_read_the_general_way(
    wandb_runs: Path, tmp_path: Path
) -> None:
    """A `_runtime` that is not a number in a history row: the bulk path stands aside (the
    record rewritten in place, checksum and all)."""
    shutil.copytree(wandb_runs, tmp_path / "wandb")
    files = offline._find_files(tmp_path / "wandb")
    victim = next(f for f in files if "long" in _run_name(f))
    data = bytearray(victim.read_bytes())
    records, _ = offline.records_of(bytes(data))
    row = next(r for r in records if r[2] == 0x12 and b"\x12\x02\x08\x0a" in r)  # step 10
    at = data.index(row) + row.index(b"\x12\x08_runtime\x82\x01") + 13
    length = data[at - 1]
    data[at : at + length] = b"x" * length
    _fix_checksum(data, at)
    victim.write_bytes(bytes(data))
    decoded = dict(zip(files, _decoded_in_bulk(tmp_path / "wandb"), strict=True))
    assert decoded.pop(victim) is False
    assert all(decoded.values())
    _assert_same(tmp_path / "wandb")


def _run_name(path: Path) -> str:
    run = offline._read_run(path)
    assert run is not None
    return run.name or ""


def _fix_checksum(data: bytearray, inside: int) -> None:
    """Recompute the CRC of the record that holds byte `inside` (a FULL record)."""
    import struct
    import zlib

    pos = offline.HEADER_SIZE
    while pos < len(data):
        left = offline.BLOCK - pos % offline.BLOCK
        if left < offline.RECORD_HEADER:
            pos += left
            continue
        _, length, kind = struct.unpack_from("<IHB", data, pos)
        start, end = pos + offline.RECORD_HEADER, pos + offline.RECORD_HEADER + length
        if start <= inside < end:
            assert kind == offline.FULL
            crc = zlib.crc32(bytes(data[start:end]), zlib.crc32(bytes([kind])))
            struct.pack_into("<I", data, pos, crc)
            return
        pos = end
    raise AssertionError("no record holds that byte")


NUMBERISH = st.text(alphabet="0123456789-+.eENaIinfty_ \0", min_size=1, max_size=24)


@settings(max_examples=400, deadline=None)
@example(["1\0", "-0", "-0.0", "-0e0", "-0E1", "0", "\x001"])
@given(st.lists(st.one_of(NUMBERISH, st.floats().map(repr), st.integers().map(str)), min_size=1))
def test_values_read_in_bulk_are_the_general_decoders_floats(raws: list[str]) -> None:
    """What the bulk path reads as a number is the float the general decoder makes of the
    same value_json (`_json`, then float); what it does not, it leaves to the general one."""
    encoded = [r.encode() for r in raws]
    buf = np.frombuffer(b"".join(encoded) + bytes(64), np.uint8)
    lengths = np.array([len(e) for e in encoded], np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    values, plain = bulk._plain_numbers(buf, starts, lengths)
    for raw, value, is_plain in zip(raws, values, plain, strict=True):
        if not is_plain:
            continue
        expected: Any = offline._json(raw)
        assert type(expected) in (int, float), raw
        assert np.float64(float(expected)).view(np.uint64) == np.float64(value).view(np.uint64)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40),
    st.lists(st.integers(0, 39), max_size=3000),
)
def test_distinct_values_are_told_apart_as_numpy_does(table: list[int], picks: list[int]) -> None:
    """`_distinct`: a few values repeated (as keys are) or thousands of distinct ones."""
    values = np.array([table[p % len(table)] for p in picks] + table, np.uint64)
    if len(picks) % 2:  # many distinct values: more than one look-up sample
        values = np.concatenate((values, np.arange(3000, dtype=np.uint64) * 7919))
    codes, first = bulk._distinct(values)
    assert (values[first][codes] == values).all()  # each value's code names its value
    assert np.unique(values).size == first.size == np.unique(values[first]).size
    for code, at in enumerate(first.tolist()):
        assert codes[at] == code and not (values[:at] == values[at]).any()  # first seen


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_items_found_by_table_and_by_sorting_agree(data: st.DataObject) -> None:
    """`_find_pairs`: a summary item's key in its history row, through a table of rows by
    keys or through sorted pairs."""
    keys = data.draw(st.integers(1, 6))
    records = sorted(data.draw(st.lists(st.integers(0, 30), max_size=60)))
    record = np.array(records + [40 + i for i in range(20)], np.int64)
    key_of = np.array(
        data.draw(st.lists(st.integers(0, keys - 1), min_size=record.size, max_size=record.size)),
        np.int64,
    )
    h_items = np.arange(len(records), dtype=np.int64)
    s_items = np.arange(len(records), record.size, dtype=np.int64)
    target = np.array(data.draw(st.lists(st.integers(0, 32), min_size=20, max_size=20)), np.int64)
    by_sorting = bulk._pairs_by_sorting(record, key_of, keys, h_items, s_items, target)
    rows = record[h_items]
    first = np.ones(rows.size, np.bool_)
    first[1:] = rows[1:] != rows[:-1]
    if rows.size:
        by_table = bulk._pairs_by_table(rows, first, key_of, keys, h_items, s_items, target)
    else:
        by_table = by_sorting
    found = by_sorting[0]
    assert (by_table[0] == found).all() and (by_table[2] == by_sorting[2]).all()
    once = found & ~by_sorting[2]
    assert (by_table[1][once] == by_sorting[1][once]).all()
    for i in range(20):  # against a plain search
        hits = [
            h
            for h in h_items.tolist()
            if record[h] == target[i] and key_of[h] == key_of[s_items[i]]
        ]
        assert found[i] == bool(hits) and by_sorting[2][i] == (len(hits) > 1)
        if len(hits) == 1:
            assert by_table[1][i] == hits[0]
