"""Following a store: only appended bytes are read, and the result equals a fresh load."""

from __future__ import annotations

import subprocess
import sys
import time
from array import array
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

import rungroup as rg
from rungroup import store
from rungroup.sources.store.follower import StoreFollower


def sorted_history(runs: rg.Runs) -> pl.DataFrame:
    return (
        runs.history.collect()
        .with_columns(pl.col("run_id").cast(pl.String), pl.col("metric").cast(pl.String))
        .sort("run_id", "metric", "step", "time")
    )


def test_polls_grow_with_the_runs_and_end_equal_to_a_fresh_load(tmp_path: Path) -> None:
    follower = StoreFollower(tmp_path)
    runs, changed = follower.poll()
    assert len(runs) == 0 and changed
    first = rg.init(dir=tmp_path, project="p", group="g", config={"lr": 0.1})
    for step in range(100):
        first.log({"loss": 1.0 / (step + 1), "acc": step / 100})
    first._flush()
    runs, changed = follower.poll()
    assert changed and runs.runs["state"].to_list() == ["running"]
    assert runs.history.select(pl.len()).collect().item() == 200
    size_after_first = (first.dir / store.HISTORY_FILE).stat().st_size

    for step in range(100, 150):
        first.log({"loss": 1.0 / (step + 1)})
    first._flush()
    second = rg.init(dir=tmp_path, project="p", group="g", config={"lr": 0.2})
    second.log({"loss": 5.0, "extra": 1.0})
    second._flush()
    runs, changed = follower.poll()
    appended = (first.dir / store.HISTORY_FILE).stat().st_size - size_after_first
    second_size = (second.dir / store.HISTORY_FILE).stat().st_size
    assert follower.bytes_read == appended + second_size  # not the first 200 points again
    assert changed and len(runs) == 2
    assert runs.history.select(pl.len()).collect().item() == 252
    assert runs.metrics == ["acc", "extra", "loss"]

    first.finish()
    second.finish(exit_code=1)
    runs, changed = follower.poll()
    assert changed
    assert dict(runs.runs.select("id", "state").iter_rows()) == {
        first.id: "finished",
        second.id: "failed",
    }
    fresh = rg.load(tmp_path)
    assert_frame_equal(sorted_history(runs), sorted_history(fresh))
    assert_frame_equal(runs.runs.drop("runtime"), fresh.runs.drop("runtime"))
    again, changed = follower.poll()
    assert not changed and again is runs
    assert follower.bytes_read == 0


def test_a_record_being_written_is_left_for_the_next_poll(tmp_path: Path) -> None:
    run = rg.init(dir=tmp_path, project="p")
    run.log({"a": 1.0})
    run._flush()
    follower = StoreFollower(tmp_path)
    follower.poll()
    history = run.dir / store.HISTORY_FILE
    record = store.encode_record(["a"], *_columns(step=1, value=2.0))
    with history.open("ab") as handle:
        handle.write(record[:20])  # half a record, as a reader may see mid-write
    runs, _ = follower.poll()  # no warning: a run still running may be mid-write
    assert sorted_history(runs)["value"].to_list() == [1.0]
    with history.open("ab") as handle:
        handle.write(record[20:])
    runs, changed = follower.poll()
    assert changed
    assert sorted_history(runs)["value"].to_list() == [1.0, 2.0]
    run.finish()


def _columns(step: int, value: float) -> tuple[array, array, array, array]:
    return array("q", [step]), array("d", [time.time()]), array("I", [0]), array("d", [value])


def test_a_writer_that_dies_turns_crashed_on_the_next_poll(tmp_path: Path) -> None:
    script = (
        "import os, sys, rungroup as rg\n"
        "run = rg.init(dir=sys.argv[1], project='p')\n"
        "run.log({'a': 1.0})\n"
        "run._flush()\n"
        "os._exit(0)\n"  # no finish, no atexit: as if killed
    )
    follower = StoreFollower(tmp_path)
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
    runs, _ = follower.poll()
    assert runs.runs["state"].to_list() == ["crashed"]
    assert sorted_history(runs)["value"].to_list() == [1.0]
