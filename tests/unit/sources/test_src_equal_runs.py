"""The same curves logged through every tracker load into equal `Runs`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from source_curves import GROUPS, SEEDS, STEPS, curve

import rungroup as rg
from rungroup.runs import Runs
from rungroup.sources.csv.tree import load_csv
from rungroup.sources.mlflow.reader import load_mlflow
from rungroup.sources.tensorboard.events import load_tensorboard
from rungroup.sources.wandb.offline import load_wandb


def _points(runs: Runs) -> pl.DataFrame:
    """(group, seed, metric, step, value), sorted, from any source."""
    keys = runs.runs.select("id", "group", pl.col("config.seed").cast(pl.Int64).alias("seed"))
    return (
        runs.history.collect()
        .join(keys, left_on="run_id", right_on="id")  # the join users write, as loaded
        .with_columns(pl.col("metric").cast(pl.String))
        .select("group", "seed", "metric", "step", "value")
        .sort("group", "seed", "metric", "step")
    )


def _expected() -> pl.DataFrame:
    rows = [
        (group, seed, metric, step, value)
        for group in GROUPS
        for seed in SEEDS
        for step in STEPS
        for metric, value in curve(group, seed, step).items()
    ]
    frame = pl.DataFrame(rows, schema=["group", "seed", "metric", "step", "value"], orient="row")
    return frame.sort("group", "seed", "metric", "step")


def _check(runs: Runs, rtol: float) -> None:
    assert len(runs) == len(GROUPS) * len(SEEDS)
    table = runs.runs.sort("group", "config.seed")
    assert table["group"].to_list() == [g for g in GROUPS for _ in SEEDS]
    assert table["config.lr"].to_list() == [GROUPS[g] for g in GROUPS for _ in SEEDS]
    assert table["config.seed"].to_list() == [s for _ in GROUPS for s in SEEDS]
    assert runs.metrics == ["acc", "loss"]
    got = _points(runs)
    want = _expected()
    assert got.select("group", "seed", "metric", "step").equals(
        want.select("group", "seed", "metric", "step")
    )
    np.testing.assert_allclose(got["value"].to_numpy(), want["value"].to_numpy(), rtol=rtol)
    # The default summary is the last value of every metric.
    last = want.filter(pl.col("step") == STEPS[-1])
    for row in table.iter_rows(named=True):
        expected = last.filter(group=row["group"], seed=row["config.seed"])
        for metric, value in zip(expected["metric"], expected["value"], strict=True):
            assert row[f"summary.{metric}"] == pytest.approx(value, rel=rtol)


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s)
def test_mlflow_sqlite_equals_curves(mlflow_sqlite: Path) -> None:
    runs = load_mlflow(mlflow_sqlite)
    _check(runs, rtol=0)
    assert set(runs.runs["project"]) == {"curves"}
    assert set(runs.runs["job_type"]) == {"train"}
    assert runs.runs["tags"].to_list() == [["owner=tests"]] * 6


def test_mlflow_file_store_equals_curves(mlflow_files: Path) -> None:
    _check(load_mlflow(mlflow_files), rtol=0)


def test_tensorboard_equals_curves_within_float32(tensorboard_logs: Path) -> None:
    runs = load_tensorboard(tensorboard_logs / "{group}" / "seed_{seed}")
    _check(runs, rtol=1e-7 * 4)  # scalars are float32


@pytest.mark.slow
def test_wandb_offline_equals_curves(wandb_dir: Path) -> None:
    runs = load_wandb(wandb_dir)
    _check(runs, rtol=0)
    assert set(runs.runs["state"]) == {"finished"}
    assert set(runs.runs["project"]) == {"curves"}
    assert runs.runs["tags"].to_list() == [["tests"]] * 6


def test_lightning_csv_equals_curves(lightning_csv: Path) -> None:
    runs = load_csv(
        lightning_csv / "{group}" / "seed_{seed}" / "metrics.csv", metrics=["loss", "acc"]
    )
    _check(runs, rtol=0)


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s)
def test_rungroup_load_detects_every_kind(
    mlflow_sqlite: Path, tensorboard_logs: Path, lightning_csv: Path
) -> None:
    assert len(rg.load(mlflow_sqlite)) == 6
    assert len(rg.load(f"sqlite:///{mlflow_sqlite}")) == 6
    assert len(rg.load(tensorboard_logs)) == 6
    assert len(rg.load(lightning_csv / "{group}" / "seed_{seed}" / "metrics.csv")) == 6


@pytest.mark.slow
def test_rungroup_load_detects_wandb_and_mlruns(wandb_dir: Path, mlflow_files: Path) -> None:
    assert len(rg.load(wandb_dir)) == 6
    assert len(rg.load(wandb_dir.parent)) == 6  # the folder holding wandb/
    assert len(rg.load(mlflow_files)) == 6
    assert len(rg.load(mlflow_files.parent)) == 6  # the folder holding mlruns/
    with pytest.raises(FileNotFoundError, match="MLflow"):
        rg.load(mlflow_files.parent / "nothing-here")
