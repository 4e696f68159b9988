"""Many writers, killed writers and readers racing writers, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import polars as pl
import pytest

import rungroup as rg
from rungroup import store, tracking

WRITER = """
import os, sys
import rungroup as rg
steps = int(sys.argv[1])
with rg.init(project="p", config={"rank": int(os.environ["RANK"])}) as run:
    for step in range(steps):
        run.log({"loss": 1.0 / (step + 1), "rank": float(os.environ["RANK"])})
"""


def writer_env(tmp_path: Path, rank: int) -> dict[str, str]:
    return {
        **os.environ,
        "RUNGROUP_DIR": str(tmp_path),
        "RUNGROUP_RUN_GROUP": "exp-shared",
        "RUNGROUP_JOB_TYPE": "worker",
        "RANK": str(rank),
    }


@pytest.mark.slow
def test_sixteen_processes_log_into_one_group_and_every_point_is_there_once(
    tmp_path: Path,
) -> None:
    steps = 5000
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(steps)], env=writer_env(tmp_path, rank))
        for rank in range(16)
    ]
    assert [p.wait(timeout=300) for p in processes] == [0] * 16
    runs = rg.load(tmp_path)
    assert runs.runs.height == 16
    assert runs.runs["group"].unique().to_list() == ["exp-shared"]
    assert sorted(runs.runs["config.rank"].to_list()) == list(range(16))
    assert set(runs.runs["state"]) == {"finished"}
    history = runs.history.collect()
    assert history.height == 16 * steps * 2
    counts = history.group_by("run_id", "metric", "step").len()
    assert counts["len"].max() == 1  # no point twice
    assert counts.height == 16 * steps * 2  # and none missing
    per_run = (
        history.filter(pl.col("metric") == "rank")
        .join(
            runs.runs.select(pl.col("id").cast(pl.Categorical).alias("run_id"), "config.rank"),
            on="run_id",
        )
        .filter(pl.col("value") != pl.col("config.rank").cast(pl.Float64))
    )
    assert per_run.height == 0  # each point landed in its own process's run


KILLED = """
import sys, time
import rungroup as rg
run = rg.init(project="p", id="victim", group="g")
for step in range(1000):
    run.log({"loss": float(step)})
time.sleep(2.5)  # past the flush interval: every step above is on disk
print("flushed", flush=True)
step = 1000
while True:
    run.log({"loss": float(step)})
    step += 1
"""


def test_a_writer_killed_with_sigkill_keeps_every_flushed_step_and_shows_crashed(
    tmp_path: Path,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED],
        env={**os.environ, "RUNGROUP_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "flushed"
    time.sleep(1.5)  # let a few partial flushes of the endless loop happen
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = rg.load(tmp_path)
    # the kill may land inside a write: that record is torn, said once and skipped
    assert all("the last record is torn" in str(w.message) for w in caught), caught
    assert len(caught) <= 1
    assert runs.runs["state"].to_list() == ["crashed"]
    steps = runs.history.collect()["step"].to_list()
    assert steps[:1000] == list(range(1000))
    assert steps == list(range(len(steps)))  # whatever else was flushed is complete, in order
    assert runs.runs["runtime"][0] > 2.0


def test_a_running_run_with_a_stale_heartbeat_from_another_host_is_crashed(
    tmp_path: Path,
) -> None:
    run = rg.init(dir=tmp_path, project="p", id="remote")
    run.log({"a": 1.0})
    run.finish()
    meta = store.read_meta(run.dir / store.META_FILE)
    meta.update(state="running", host="another-machine", heartbeat_at="2020-01-01T00:00:00+00:00")
    store.write_json_atomically(run.dir / store.META_FILE, meta)
    assert rg.load(tmp_path).runs["state"].to_list() == ["crashed"]
    assert rg.load(tmp_path, stale_after=10**10).runs["state"].to_list() == ["running"]


def test_a_reader_loading_while_writers_write_never_errors_and_only_sees_growth(
    tmp_path: Path,
) -> None:
    stop = threading.Event()

    def write(rank: int) -> None:
        with rg.init(dir=tmp_path, project="p", group="live", config={"rank": rank}) as run:
            step = 0
            while not stop.is_set():
                run.log({"loss": 1.0 / (step + 1), "acc": step / 1e4})
                step += 1
                if step % 500 == 0:
                    run._flush()  # more, smaller records: more chances to read one half-written
                    time.sleep(0.001)

    threads = [threading.Thread(target=write, args=(rank,)) for rank in range(3)]
    for thread in threads:
        thread.start()
    while len(list(tmp_path.glob("p/*/run.json"))) < 3:
        time.sleep(0.01)
    previous = 0
    try:
        deadline = time.monotonic() + 4
        loads = 0
        while time.monotonic() < deadline:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                runs = rg.load(tmp_path)
                with_warnings = [str(w.message) for w in caught]
            assert with_warnings == []  # a record in progress is not a problem
            size = runs.history.select(pl.len()).collect().item()
            assert size >= previous
            history = runs.history.collect()
            # points come in whole log() calls: both metrics of a step, or neither
            assert history.group_by("run_id", "step").len()["len"].max() in (None, 2)
            previous = size
            loads += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert loads >= 3 and previous > 0
    assert set(rg.load(tmp_path).runs["state"]) == {"finished"}


def test_history_is_flushed_within_about_a_second_while_the_run_is_alive(
    tmp_path: Path,
) -> None:
    run = rg.init(dir=tmp_path, project="p")
    run.log({"a": 1.0})
    deadline = time.monotonic() + tracking.FLUSH_INTERVAL * 3
    while time.monotonic() < deadline:
        if rg.load(tmp_path).history.select(pl.len()).collect().item() == 1:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the logged point did not reach the disk while the run was alive")
    assert rg.load(tmp_path).runs["state"].to_list() == ["running"]
    run.finish()
