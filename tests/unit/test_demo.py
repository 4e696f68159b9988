"""The demo runs are real trainings, logged the way users log: check what they contain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import rungroup as rg
from rungroup import demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(demo_runs: Path) -> rg.Runs:
    return rg.load(demo_runs)


def test_cross_validation_has_one_run_per_lr_seed_and_fold(runs: rg.Runs) -> None:
    cv = runs.filter(pl.col("group").str.starts_with("cv-"))
    assert cv.runs["group"].n_unique() == 1
    assert len(cv) == len(demo.LEARNING_RATES) * len(demo.SEEDS) * demo.FOLDS == 30
    assert set(cv.runs["job_type"]) == {"train"}
    combos = cv.runs.select("config.lr", "config.seed", "config.fold").unique()
    assert combos.height == 30
    assert sorted(cv.runs["config.lr"].unique()) == list(demo.LEARNING_RATES)
    history = cv.history.collect()
    assert sorted(history["metric"].cast(pl.String).unique()) == [
        "train_acc",
        "train_loss",
        "val_acc",
        "val_loss",
    ]
    per_run = history.group_by("run_id", "metric").agg(pl.col("step").sort())
    assert all(steps == list(range(demo.EPOCHS)) for steps in per_run["step"].to_list())


def test_training_really_learns(runs: rg.Runs) -> None:
    history = runs.filter(pl.col("config.lr") == 0.1, job_type="train").history.collect()
    loss = history.filter(pl.col("metric") == "train_loss")
    first = loss.filter(pl.col("step") == 0)["value"].mean()
    last = loss.filter(pl.col("step") == demo.EPOCHS - 1)["value"].mean()
    assert isinstance(first, float) and isinstance(last, float)
    assert last < first / 3
    final_acc = runs.filter(pl.col("config.lr") == 0.1, job_type="train").runs["summary.val_acc"]
    assert final_acc.min() > 0.9  # digits is easy: chance is 0.1
    best = runs.filter(job_type="train").runs
    assert (best["summary.best_val_acc"] >= best["summary.val_acc"]).all()


def test_the_distributed_job_shares_one_group_across_processes(runs: rg.Runs) -> None:
    job = runs.filter(pl.col("group").str.starts_with("ddp-"))
    assert job.runs["group"].n_unique() == 1
    assert sorted(job.runs["job_type"].to_list()) == [
        "eval",
        "worker",
        "worker",
        "worker",
        "worker",
    ]
    workers = job.filter(job_type="worker").runs
    assert sorted(workers["config.rank"].to_list()) == [0, 1, 2, 3]
    assert workers["source"].n_unique() == 4
    assert set(job.runs["state"]) == {"finished"}
    evaluation = job.filter(job_type="eval").history.collect().filter(pl.col("metric") == "val_acc")
    values = evaluation.sort("step")["value"].to_list()
    assert len(values) == demo.EPOCHS
    assert values[-1] > 0.9 and values[-1] > values[0]


def test_the_demo_command_refuses_nothing_and_writes_a_store(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rungroup", "demo", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "store folder" in result.stdout


def test_the_demo_command_says_what_it_trains_and_how_far_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rungroup import cli

    monkeypatch.setattr(demo, "EPOCHS", 1)  # the real training, one epoch per run
    monkeypatch.setattr(demo, "_start_background", lambda root, group: lambda: None)
    assert cli.main(["demo", str(tmp_path / "runs")]) == 0
    said = capsys.readouterr().err
    assert "training small MLPs" in said and "cv-" in said and "ddp-" in said
    assert "cross-validation runs" in said and "30/30" in said  # the bar reached the end
    assert "waiting for the distributed job" in said
    assert "demo runs written to" in said
    assert len(rg.load(tmp_path / "runs")) == 30
