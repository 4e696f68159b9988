"""CSV / JSON-lines trees and frames in memory."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

import rungroup as rg
from rungroup.runs import LoadWarning
from rungroup.sources.csv.tree import load_csv
from rungroup.sources.frames.convert import from_frames


def _sb3(root: Path) -> None:
    """Stable-Baselines3's progress.csv: `time/total_timesteps` etc., empty cells early."""
    for algo in ("ppo", "a2c"):
        for seed in (1, 2):
            folder = root / algo / "CartPole-v1" / f"seed_{seed}"
            folder.mkdir(parents=True)
            with (folder / "progress.csv").open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(
                    [
                        "rollout/ep_rew_mean",
                        "time/fps",
                        "time/time_elapsed",
                        "time/total_timesteps",
                        "train/loss",
                    ]
                )
                for i in range(1, 6):
                    loss = "" if i == 1 else f"{1 / i:.6f}"
                    writer.writerow([i * 10 + seed, 500, i * 2, i * 2048, loss])


def test_sb3_template_tree(tmp_path: Path) -> None:
    _sb3(tmp_path)
    runs = load_csv(tmp_path / "{algo}" / "{env}" / "seed_{seed}" / "progress.csv", group="algo")
    table = runs.runs.sort("id")
    assert table["id"].to_list()[0] == "a2c/CartPole-v1/seed_1"
    assert table["group"].to_list() == ["a2c", "a2c", "ppo", "ppo"]
    assert table["config.seed"].to_list() == [1, 2, 1, 2]
    assert runs.metrics == ["rollout/ep_rew_mean", "time/fps", "train/loss"]
    history = runs.history.collect()
    one = history.filter(pl.col("run_id") == "ppo/CartPole-v1/seed_2").sort("metric", "step")
    reward = one.filter(metric="rollout/ep_rew_mean")
    assert reward["step"].to_list() == [2048, 4096, 6144, 8192, 10240]
    assert reward["time"].to_list() == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert one.filter(metric="train/loss").height == 4  # the empty cell is no point
    assert table["summary.rollout/ep_rew_mean"].to_list() == [51, 52, 51, 52]
    assert rg.load(tmp_path / "{algo}" / "{env}" / "seed_{seed}" / "progress.csv").runs.height == 4
    assert len(rg.load(tmp_path)) == 4  # a folder of CSV files


def test_named_step_column_and_missing_one(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("it,score\n10,1\n20,2\n")
    runs = load_csv(tmp_path / "a.csv", step="it")
    assert runs.history.collect()["step"].to_list() == [10, 20]
    (tmp_path / "b.csv").write_text("score\n1\n2\n3\n")
    assert load_csv(tmp_path / "b.csv").history.collect()["step"].to_list() == [0, 1, 2]


def test_text_columns_are_not_metrics(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("step,phase,loss,ok\n0,warmup,1.5,true\n1,train,nan,false\n")
    runs = load_csv(tmp_path / "r.csv")
    assert runs.metrics == ["loss", "ok"]
    values = runs.history.collect().filter(metric="loss")["value"].to_list()
    assert values[0] == 1.5 and values[1] != values[1]  # NaN kept


def test_jsonl_with_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "r1" / "log.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(
        '{"step": 0, "loss": 1.0, "eval": {"acc": 0.5}}\n{oops\n{"step": 1, "loss": 0.5}\n'
    )
    with pytest.warns(LoadWarning, match=r"log\.jsonl: line 2"):
        runs = load_csv(tmp_path / "runs")
    assert runs.ids == ["r1"]
    assert runs.metrics == ["eval/acc", "loss"]


def test_unreadable_files_are_warnings(tmp_path: Path) -> None:
    good = tmp_path / "good" / "metrics.csv"
    good.parent.mkdir()
    good.write_text("step,loss\n0,1\n")
    bad = tmp_path / "bad" / "metrics.csv"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xfe\x00garbage\x00\n\x00\x01")
    (good.parent / "hparams.yaml").write_text("lr: !!python/object:os.system {}\n")
    with pytest.warns(LoadWarning) as caught:
        runs = load_csv(tmp_path)
    assert any("hparams.yaml" in str(w.message) for w in caught)
    assert "good" in runs.ids


def test_lightning_hparams_become_config(lightning_csv: Path) -> None:
    runs = load_csv(lightning_csv)
    assert runs.runs["config.lr"].dtype == pl.Float64
    assert "epoch" in runs.metrics  # Lightning logs the epoch as a metric


def test_from_frames_long_and_wide_pandas_and_polars() -> None:
    wide = pd.DataFrame(
        {
            "run": ["a", "a", "b", "b"],
            "optimizer": ["adam", "adam", "sgd", "sgd"],
            "step": [0, 1, 0, 1],
            "loss": [1.0, 0.5, 2.0, 1.0],
        }
    )
    runs = from_frames(history_df=wide)
    assert runs.runs["config.optimizer"].to_list() == ["adam", "sgd"]
    assert runs.metrics == ["loss"]
    assert runs.runs["summary.loss"].to_list() == [0.5, 1.0]

    long = pl.DataFrame(
        {
            "run_id": ["a", "a", "b"],
            "metric": ["acc"] * 3,
            "step": [0, 1, 0],
            "value": [0.1, 0.2, 0.3],
        }
    )
    table = pl.DataFrame({"id": ["a", "b"], "group": ["g", "g"], "lr": [0.1, 0.2]})
    runs = from_frames(table, long)
    assert runs.runs["config.lr"].to_list() == [0.1, 0.2]
    assert runs.runs["group"].to_list() == ["g", "g"]
    assert rg.load(long).ids == ["a", "b"]
    assert rg.load((table, long)).runs["config.lr"].to_list() == [0.1, 0.2]
    assert rg.from_frames is from_frames
    joined = runs.history.join(runs.runs.lazy(), left_on="run_id", right_on="id").collect()
    assert joined.sort("value")["config.lr"].to_list() == [0.1, 0.1, 0.2]


def test_from_frames_needs_a_run_column() -> None:
    with pytest.raises(ValueError, match="run column"):
        from_frames(history_df=pl.DataFrame({"step": [0], "loss": [1.0]}))
    with pytest.raises(TypeError):
        from_frames()


def test_progress_bar_for_large_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(70):  # more than PROGRESS_THRESHOLD files: the bar shows by itself
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        (folder / "metrics.csv").write_text(f"step,loss\n0,{i}\n")
    assert len(load_csv(tmp_path)) == 70
    assert "csv" in capsys.readouterr().err
    assert len(load_csv(tmp_path, progress_bar=False)) == 70
    assert capsys.readouterr().err == ""
