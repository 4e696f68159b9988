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
from polars.testing import assert_frame_equal

import rungroup as rg
from rungroup.sources.follow_wandb import WandbFollower
from rungroup.sources.wandb_offline import load_wandb

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


def sorted_history(runs: rg.Runs) -> pl.DataFrame:
    return (
        runs.history.collect()
        .with_columns(pl.col("run_id").cast(pl.String), pl.col("metric").cast(pl.String))
        .sort("run_id", "metric", "step", "value")
    )


def assert_same(followed: rg.Runs, fresh: rg.Runs) -> None:
    assert_frame_equal(followed.runs.drop("runtime"), fresh.runs.drop("runtime"))
    assert_frame_equal(sorted_history(followed), sorted_history(fresh))


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
                assert_same(again, fresh)
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
    assert_same(runs, load_wandb(source))

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
    assert_same(runs, load_wandb(tmp_path / "copy"))
