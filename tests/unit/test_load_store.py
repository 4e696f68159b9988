"""Loading a store into `Runs`: schemas, derived columns, selection and the Runs API."""

from __future__ import annotations

import math
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import rungroup as rg
from rungroup.runs import HISTORY_SCHEMA, RUN_SCHEMA, Runs, build_runs_frame
from rungroup.sources import runrecords


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    for project, group, lr, seed in [
        ("vision", "exp-a", 0.1, 0),
        ("vision", "exp-a", 0.1, 1),
        ("vision", "exp-b", 0.01, 0),
        ("text", None, 0.5, 0),
    ]:
        with rg.init(
            dir=tmp_path,
            project=project,
            group=group,
            job_type="train",
            config={"lr": lr, "seed": seed, "optim": {"name": "sgd", "momentum": 0.9}},
            tags=["t1", f"seed{seed}"],
        ) as run:
            for step in range(10):
                run.log({"loss": lr / (step + 1), "acc": step / 10}, step=step * 2)
            run.log({"loss": math.nan}, step=20)
    return tmp_path


def test_runs_and_history_follow_the_design_schemas(store_dir: Path) -> None:
    runs = rg.load(store_dir)
    assert list(runs.runs.schema.items())[: len(RUN_SCHEMA)] == list(RUN_SCHEMA.items())
    assert runs.history.collect_schema() == pl.Schema(HISTORY_SCHEMA)
    history = runs.history.collect()
    assert history.schema == pl.Schema(HISTORY_SCHEMA)
    assert history.height == 4 * 21
    assert runs.runs.height == 4
    extra = runs.runs.columns[len(RUN_SCHEMA) :]
    assert extra == [
        "config.lr",
        "config.optim.momentum",
        "config.optim.name",
        "config.seed",
        "summary.acc",
        "summary.loss",
    ]
    assert runs.runs.schema["config.seed"] == pl.Int64
    assert runs.runs.schema["config.optim.name"] == pl.String


def test_history_joins_runs_as_loaded(store_dir: Path) -> None:
    """The join users write needs no cast: `run_id` and `id` share a dtype."""
    runs = rg.load(store_dir)
    joined = runs.history.join(runs.runs.lazy(), left_on="run_id", right_on="id").collect()
    assert joined.height == runs.history.collect().height
    by_run = joined.group_by("run_id").agg(pl.col("config.lr").first()).sort("config.lr")
    assert by_run["config.lr"].to_list() == [0.01, 0.1, 0.1, 0.5]
    eager = runs.history.collect().join(runs.runs, left_on="run_id", right_on="id")
    assert eager.height == joined.height


def test_derived_columns_time_timestamp_runtime_source_and_summary(store_dir: Path) -> None:
    runs = rg.load(store_dir)
    history = runs.history.collect()
    for row in runs.runs.iter_rows(named=True):
        points = history.filter(pl.col("run_id") == row["id"])
        created: datetime = row["created_at"]
        assert created.tzinfo is not None
        assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 120
        # timestamp = created_at + time, to the microsecond
        expected = (points["time"] * 1e6).round().cast(pl.Int64) + int(created.timestamp() * 1e6)
        got = points["timestamp"].dt.epoch("us")
        assert (got - expected).abs().max() <= 1
        assert points["time"].min() >= 0
        assert row["runtime"] >= points["time"].max() >= 0
        assert row["source"].startswith("rungroup:") and row["id"] in row["source"]
        assert math.isnan(row["summary.loss"])  # the last logged loss was NaN: kept as logged
        assert row["summary.acc"] == pytest.approx(0.9)
        assert row["state"] == "finished"
        assert row["tags"][0] == "t1"


def test_metrics_columns_filter_and_select_ids(store_dir: Path) -> None:
    runs = rg.load(store_dir)
    assert runs.metrics == ["acc", "loss"]
    assert runs.columns[:6] == ["project", "group", "job_type", "name", "state", "tags"]
    assert "config.optim.name" in runs.columns and "summary.loss" in runs.columns
    assert runs.config_columns == [
        "config.lr",
        "config.optim.momentum",
        "config.optim.name",
        "config.seed",
    ]
    subset = runs.filter(pl.col("config.lr") == 0.1)
    assert len(subset) == 2
    assert set(subset.history.collect()["run_id"].cast(pl.String)) == set(subset.ids)
    same = runs.filter(group="exp-b")
    assert same.runs["config.lr"].to_list() == [0.01]
    only = runs.select_ids(runs.ids[:1])
    assert only.ids == runs.ids[:1]
    assert only.history.collect().height == 21
    assert "4 runs" in repr(runs) and "acc, loss" in repr(runs)


def test_a_project_folder_a_run_folder_and_a_project_option(store_dir: Path) -> None:
    assert len(rg.load(store_dir / "vision")) == 3
    assert len(rg.load(store_dir, project="text")) == 1
    one = next((store_dir / "vision").iterdir())
    single = rg.load(one)
    assert single.ids == [one.name]
    assert rg.load(single) is single


def test_runs_are_ordered_by_creation(store_dir: Path) -> None:
    created = rg.load(store_dir).runs["created_at"].to_list()
    assert created == sorted(created)


def test_an_empty_folder_is_an_empty_store(tmp_path: Path) -> None:
    runs = rg.load(tmp_path)
    assert len(runs) == 0 and runs.metrics == []
    assert runs.history.collect().schema == pl.Schema(HISTORY_SCHEMA)


def test_a_progress_bar_is_shown_for_many_runs_only(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rg.load(store_dir)  # 4 runs: below the threshold every source shares
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(runrecords, "PROGRESS_THRESHOLD", 2)
    rg.load(store_dir)
    assert "store" in capsys.readouterr().err
    rg.load(store_dir, progress_bar=False)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(runrecords, "PROGRESS_THRESHOLD", 64)
    rg.load(store_dir, progress_bar=True)
    assert "store" in capsys.readouterr().err


def test_the_old_progress_option_still_works_with_a_deprecation_warning(
    store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.warns(DeprecationWarning, match="progress_bar"):
        runs = rg.load(store_dir, progress=True)
    assert len(runs) == 4 and "store" in capsys.readouterr().err


def test_config_values_of_different_types_load_as_text_with_a_warning() -> None:
    records = [
        {"id": "a", "config": {"width": 64, "act": "relu", "flag": True, "mix": 1}},
        {"id": "b", "config": {"width": 0.5, "act": "gelu", "flag": False, "mix": "1"}},
        {"id": "c", "config": {"layers": [64, 64]}},
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = build_runs_frame(records)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "'config.mix'" in messages[0]
    assert frame.schema["config.width"] == pl.Float64  # int and float: numbers, no warning
    assert frame.schema["config.flag"] == pl.Boolean
    assert frame["config.mix"].to_list() == ["1", "1", None]
    assert frame["config.layers"].to_list() == [None, None, "[64, 64]"]
    Runs(frame)  # and it is a valid runs frame


def test_runs_checks_frames_against_the_schema() -> None:
    with pytest.raises(ValueError, match="unknown column"):
        Runs(pl.DataFrame({"id": ["a"], "colour": ["red"]}))
    with pytest.raises(ValueError, match="unique"):
        Runs(pl.DataFrame({"id": ["a", "a"]}))
    with pytest.raises(ValueError, match="unknown run state 'done'"):
        Runs(pl.DataFrame({"id": ["a"], "state": ["done"]}))
    with pytest.raises(ValueError, match="no 'value' column"):
        Runs(pl.DataFrame({"id": ["a"]}), pl.DataFrame({"run_id": ["a"], "metric": ["m"]}))
    runs = Runs(
        pl.DataFrame({"id": ["a"]}),
        pl.DataFrame({"run_id": ["a", "a"], "metric": ["m", "m"], "value": np.array([1.0, 2.0])}),
    )
    history = runs.history.collect()
    assert history.schema == pl.Schema(HISTORY_SCHEMA)
    assert history["step"].to_list() == [0, 1]
    assert runs.runs["name"].to_list() == ["a"]


def test_summary_finds_the_last_value_of_a_metric_logged_long_ago(tmp_path: Path) -> None:
    with rg.init(dir=tmp_path, project="p") as run:
        run.log({"rare": 1.0, "often": 0.0})
        run.log({"rare": 2.0})
        run._flush()  # the rare metric's last value sits in an earlier record
        for step in range(5000):
            run.log({"often": float(step)})
        run.log({"sometimes": 7.0})
        for step in range(3000):
            run.log({"often": -float(step)})
    row = rg.load(tmp_path).runs.row(0, named=True)
    assert row["summary.rare"] == 2.0
    assert row["summary.sometimes"] == 7.0
    assert row["summary.often"] == -2999.0
