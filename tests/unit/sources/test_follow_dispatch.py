"""`follow(source)`: the right follower for every source `rungroup.load` accepts."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from follow_helpers import sorted_history
from polars.testing import assert_frame_equal

import rungroup as rg
from rungroup.sources.followers import (
    PendingFollower,
    ReloadFollower,
    StaticFollower,
    follow,
)
from rungroup.sources.mlflow.follower import MlflowFollower
from rungroup.sources.store.follower import StoreFollower
from rungroup.sources.tensorboard.follower import TensorBoardFollower
from rungroup.sources.wandb.follower import WandbFollower


def test_a_store_and_an_empty_folder_that_becomes_one(tmp_path: Path) -> None:
    empty = tmp_path / "runs"
    empty.mkdir()
    follower = follow(empty)
    assert isinstance(follower, PendingFollower)
    runs, changed = follower.poll()
    assert len(runs) == 0 and not changed
    run = rg.init(dir=empty, project="p", config={"lr": 0.1})
    run.log({"loss": 1.0})
    run._flush()
    runs, changed = follower.poll()
    assert isinstance(follower.follower, StoreFollower)
    assert changed and len(runs) == 1
    run.finish()
    assert isinstance(follow(empty, project="p"), StoreFollower)


def test_tensorboard_and_wandb_get_their_tailing_followers(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "tb" / "a"))
    writer.add_scalar("loss", 1.0, 0)
    writer.close()
    assert isinstance(follow(tmp_path / "tb"), TensorBoardFollower)
    assert isinstance(follow(str(tmp_path / "{run}")), TensorBoardFollower)
    folder = tmp_path / "wandb" / "offline-run-20250101_000000-abc"
    folder.mkdir(parents=True)
    (folder / "run-abc.wandb").write_bytes(b":W&B\xe1\xbe\x00")
    follower = follow(tmp_path / "wandb", progress_bar=False)
    assert isinstance(follower, WandbFollower)
    runs, _ = follower.poll()
    assert runs.runs["id"].to_list() == ["abc"]


def test_csv_trees_are_loaded_again_only_when_a_file_changed(tmp_path: Path) -> None:
    folder = tmp_path / "logs" / "seed_0"
    folder.mkdir(parents=True)
    metrics = folder / "metrics.csv"
    metrics.write_text("step,loss\n0,1.0\n1,0.5\n")
    follower = follow(tmp_path / "logs")
    assert isinstance(follower, ReloadFollower)
    runs, changed = follower.poll()
    assert changed and follower.loads == 1
    again, changed = follower.poll()
    assert not changed and again is runs and follower.loads == 0
    with metrics.open("a") as handle:
        handle.write("2,0.25\n")
    runs, changed = follower.poll()
    assert changed and follower.loads == 1
    fresh = rg.load(tmp_path / "logs")
    assert runs.runs.equals(fresh.runs)
    assert_frame_equal(sorted_history(runs), sorted_history(fresh))
    assert sorted_history(runs)["value"].to_list() == [1.0, 0.5, 0.25]


def test_a_server_uri_is_loaded_every_poll_and_changes_only_when_it_differs() -> None:
    results = [rg.Runs(), rg.Runs(), rg.load(pl.DataFrame({"run_id": ["a"], "loss": [1.0]}))]
    follower = ReloadFollower("http://127.0.0.1:1", lambda source: results.pop(0))
    _, changed = follower.poll()
    assert changed
    _, changed = follower.poll()
    assert not changed and follower.loads == 1
    runs, changed = follower.poll()
    assert changed and len(runs) == 1


def test_runs_and_frames_do_not_change_and_bad_sources_fail_as_in_load(tmp_path: Path) -> None:
    runs = rg.Runs()
    follower = follow(runs)
    assert isinstance(follower, StaticFollower)
    assert follower.poll() == (runs, True)
    assert follower.poll() == (runs, False)
    frame = pl.DataFrame({"run_id": ["a", "a"], "step": [0, 1], "loss": [1.0, 0.5]})
    assert isinstance(follow(frame), StaticFollower)
    with pytest.raises(FileNotFoundError):
        follow(tmp_path / "missing")
    with pytest.raises(TypeError):
        follow(runs, project="p")
    with pytest.raises(TypeError):
        follow(object())
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a source"):
        follow(tmp_path / "notes.txt")


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s, once a session)
def test_mlflow_sqlite_gets_the_row_follower_and_a_file_store_reloads(
    tmp_path: Path, empty_mlflow_db: Path
) -> None:
    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    for source in (tmp_path, tmp_path / "mlflow.db", f"sqlite:///{tmp_path / 'mlflow.db'}"):
        follower = follow(source, progress_bar=False)
        assert isinstance(follower, MlflowFollower)
        follower.close()
    store = tmp_path / "mlruns"
    experiment = store / "0"
    experiment.mkdir(parents=True)
    (experiment / "meta.yaml").write_text("experiment_id: '0'\nname: Default\n")
    assert isinstance(follow(store), ReloadFollower)


def test_a_csv_template_watches_its_matches_only(tmp_path: Path) -> None:
    template = str(tmp_path / "{algo}" / "progress.csv")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "progress.csv").write_text("step,loss\n0,1.0\n")
    follower = follow(template)
    assert isinstance(follower, ReloadFollower)
    runs, _ = follower.poll()
    (tmp_path / "unrelated.txt").write_text("not a run")
    _, changed = follower.poll()
    assert not changed and follower.loads == 0
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "progress.csv").write_text("step,loss\n0,2.0\n")
    runs, changed = follower.poll()
    assert changed and len(runs) == 2
    assert runs.runs.equals(rg.load(template).runs)
