"""W&B run files written by the real client in offline mode: states, config, damage."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rungroup.runs import LoadWarning
from rungroup.sources.wandb.offline import is_wandb, load_wandb, read_records

pytestmark = pytest.mark.slow  # each run written by wandb costs about a second


@pytest.fixture(scope="module")
def wandb_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run with nested config and an explicit summary, a failed run, and a long
    run whose records span several 32 KiB blocks."""
    root = tmp_path_factory.mktemp("wandb-kinds")
    script = f"""
import math, wandb
run = wandb.init(project="kinds", name="ok", dir={str(root)!r}, group="g", job_type="eval",
                 config={{"model": {{"depth": 3, "act": "relu"}}, "lr": 0.1, "tags": [1, 2]}},
                 notes="hello", tags=["x"])
run.log({{"loss": 1.0, "train": {{"acc": 0.5}}, "bad": float("nan")}}, step=0)
run.log({{"loss": 0.5, "train": {{"acc": 0.75}}, "bad": math.inf}}, step=1)
run.config.update({{"late": "yes"}})
run.summary["best_loss"] = 0.25
run.finish()
run = wandb.init(project="kinds", name="fails", dir={str(root)!r})
run.log({{"loss": 2.0}})
run.log({{"loss": 1.0}})
run.finish(exit_code=3)
run = wandb.init(project="kinds", name="long", dir={str(root)!r})
for step in range(3000):
    run.log({{"m0": step * 0.5, "m1": -step, "m2": step / 7}})
run.finish()
"""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    return root / "wandb"


def test_finished_run_maps_everything(wandb_runs: Path) -> None:
    assert is_wandb(wandb_runs) and is_wandb(wandb_runs.parent)
    runs = load_wandb(wandb_runs)
    row = runs.runs.filter(pl.col("name") == "ok").row(0, named=True)
    assert (row["project"], row["group"], row["job_type"]) == ("kinds", "g", "eval")
    assert (row["state"], row["tags"]) == ("finished", ["x"])
    assert (row["config.model.depth"], row["config.model.act"]) == (3, "relu")
    assert (row["config.lr"], row["config.late"]) == (0.1, "yes")
    assert row["config.tags"] == "[1, 2]"  # lists are kept as JSON text
    assert row["summary.best_loss"] == 0.25
    assert row["summary.loss"] == 0.5
    assert row["runtime"] is not None and row["created_at"] is not None
    history = runs.history.collect().filter(pl.col("run_id") == row["id"]).sort("metric", "step")
    by_metric = {m: history.filter(metric=m)["value"].to_list() for m in ("loss", "train.acc")}
    assert by_metric == {"loss": [1.0, 0.5], "train.acc": [0.5, 0.75]}
    bad = history.filter(metric="bad")["value"].to_list()
    assert bad[0] != bad[0] and bad[1] == float("inf")
    assert history["time"].null_count() == 0 and history["timestamp"].null_count() == 0


def test_failed_run_and_default_steps(wandb_runs: Path) -> None:
    runs = load_wandb(wandb_runs)
    row = runs.runs.filter(pl.col("name") == "fails").row(0, named=True)
    assert row["state"] == "failed"
    history = runs.history.collect().filter(pl.col("run_id") == row["id"])
    assert history.sort("step")["step"].to_list() == [0, 1]


def test_records_across_blocks(wandb_runs: Path) -> None:
    path = next(p for p in wandb_runs.glob("*run-*/run-*.wandb") if p.stat().st_size > 100_000)
    records, problems = read_records(path)
    assert problems == []
    assert len(records) > 3000
    runs = load_wandb(path)
    history = runs.history.collect()
    assert history.height == 9000
    m2 = history.filter(metric="m2").sort("step")
    assert m2["value"].to_list()[-1] == pytest.approx(2999 / 7)


def _copy_one(wandb_runs: Path, tmp_path: Path, name: str) -> tuple[Path, Path]:
    runs = load_wandb(wandb_runs)
    source = runs.runs.filter(pl.col("name") == name)["source"][0].removeprefix("wandb:")
    target = tmp_path / "wandb" / Path(source).name
    shutil.copytree(source, target)
    return target, next(target.glob("run-*.wandb"))


def test_corrupt_record_is_a_warning_and_other_runs_load(wandb_runs: Path, tmp_path: Path) -> None:
    shutil.copytree(wandb_runs, tmp_path / "wandb", dirs_exist_ok=True)
    path = max((tmp_path / "wandb").glob("*run-*/run-*.wandb"), key=lambda p: p.stat().st_size)
    data = bytearray(path.read_bytes())
    data[50_000] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.warns(LoadWarning, match=r"run-.*\.wandb: record \d+: checksum mismatch"):
        runs = load_wandb(tmp_path / "wandb")
    assert len(runs) == 3
    # the record hit by the flipped byte is lost (a history or a system record, depending on
    # where the client put it); the other two runs load exactly as from the intact copy
    damaged = runs.runs.filter(pl.col("source").str.contains(path.parent.name, literal=True))
    assert damaged.height == 1
    damaged_id = damaged["id"][0]
    clean = load_wandb(wandb_runs).history.collect()
    loaded = runs.history.collect()
    undamaged = pl.col("run_id").cast(pl.String) != damaged_id
    order = ["run_id", "metric", "step"]
    assert_frame_equal(
        loaded.filter(undamaged).with_columns(pl.col("run_id").cast(pl.String)).sort(order),
        clean.filter(undamaged).with_columns(pl.col("run_id").cast(pl.String)).sort(order),
        check_dtypes=False,
    )
    assert 0 < loaded.filter(~undamaged).height <= clean.filter(~undamaged).height


def test_truncated_old_file_is_a_crashed_run(wandb_runs: Path, tmp_path: Path) -> None:
    _, path = _copy_one(wandb_runs, tmp_path, "ok")
    data = path.read_bytes()
    boundary = 7  # after the file header: walk the records to one past the middle
    while boundary < len(data) // 2:
        boundary += 7 + struct.unpack_from("<H", data, boundary + 4)[0]
    path.write_bytes(data[: boundary + 3])  # cut inside the next record's header
    old = time.time() - 3600
    os.utime(path, (old, old))
    with pytest.warns(LoadWarning, match="truncated"):
        runs = load_wandb(tmp_path / "wandb")
    assert runs.runs["state"].to_list() == ["crashed"]


def test_not_a_wandb_file_is_a_warning(tmp_path: Path) -> None:
    folder = tmp_path / "wandb" / "offline-run-1-abc"
    folder.mkdir(parents=True)
    (folder / "run-abc.wandb").write_text(json.dumps({"not": "wandb"}))
    with pytest.warns(LoadWarning, match="no ':W&B' header"):
        assert len(load_wandb(tmp_path / "wandb")) == 0
