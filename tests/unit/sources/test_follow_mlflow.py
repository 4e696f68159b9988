"""Following an MLflow SQLite store: only new rows are read, and every poll equals a fresh load."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import polars as pl
import pytest
from follow_helpers import assert_same

from rungroup.sources.mlflow.follower import MlflowFollower
from rungroup.sources.mlflow.reader import load_mlflow


@pytest.fixture
def database(tmp_path: Path, empty_mlflow_db: Path) -> Path:
    path = tmp_path / "mlflow.db"
    shutil.copy(empty_mlflow_db, path)
    return path


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s, once a session)
def test_polls_read_only_new_rows_and_equal_a_fresh_load(database: Path) -> None:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{database}")
    follower = MlflowFollower(database)
    runs, changed = follower.poll()
    assert changed and len(runs) == 0

    experiment = client.create_experiment("live")
    first = client.create_run(experiment, run_name="a", tags={"group": "adam"}).info.run_id
    base = 1_700_000_000_000
    client.log_batch(
        first,
        metrics=[Metric(k, step * 0.1, base + step, step) for step in range(50) for k in "xy"],
        params=[Param("lr", "0.1")],
    )
    runs, changed = follower.poll()
    assert changed and runs.runs["state"].to_list() == ["running"]
    assert follower.rows_read["metrics"] == 100
    assert_same(runs, load_mlflow(database))

    again, changed = follower.poll()  # nothing committed: nothing read
    assert not changed and again is runs and follower.rows_read == {}

    client.log_batch(
        first, metrics=[Metric("x", float("nan"), base + 60, 60), Metric("z", 1.0, base, 0)]
    )
    second = client.create_run(experiment, run_name="b", tags={"group": "sgd"}).info.run_id
    client.log_batch(second, metrics=[Metric("x", -float("inf"), base, 0)], params=[])
    client.log_param(second, "lr", "0.2")
    client.set_tag(first, "group", "adamw")  # overwritten in place: same rowid
    runs, changed = follower.poll()
    assert changed and follower.rows_read["metrics"] == 3  # not the first 100 again
    assert follower.rows_read["params"] == 1
    assert follower.rows_read["latest_metrics"] == 4  # x, y, z of the first run, x of the second
    assert_same(runs, load_mlflow(database))
    assert dict(runs.runs.select("name", "group").iter_rows()) == {"a": "adamw", "b": "sgd"}

    client.set_terminated(first)
    client.set_terminated(second, status="FAILED")
    runs, changed = follower.poll()
    assert changed and follower.rows_read.get("metrics", 0) == 0
    assert dict(runs.runs.select("name", "state").iter_rows()) == {"a": "finished", "b": "failed"}
    assert_same(runs, load_mlflow(database))

    client.delete_run(second)
    runs, changed = follower.poll()
    assert changed and runs.runs["name"].to_list() == ["a"]
    assert_same(runs, load_mlflow(database))
    follower.close()


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s, once a session)
def test_options_and_nested_runs_as_load_mlflow(database: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{database}")
    try:
        mlflow.set_experiment("one")
        with MlflowFollower(f"sqlite:///{database}", experiments=["one"]) as follower:
            with (
                mlflow.start_run(run_name="parent"),
                mlflow.start_run(run_name="child", nested=True),
            ):
                for step in range(5):
                    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
                runs, _ = follower.poll()
                assert_same(runs, load_mlflow(database, experiments=["one"]))
                assert runs.runs.filter(pl.col("name") == "child")["group"].item() == "parent"
                mlflow.log_metric("loss", 0.1, step=5)
            mlflow.set_experiment("two")
            with mlflow.start_run(run_name="other"):
                mlflow.log_metric("loss", 3.0)
            runs, _ = follower.poll()
            assert follower.rows_read["metrics"] == 2
            assert sorted(runs.runs["name"]) == ["child", "parent"]
            assert_same(runs, load_mlflow(database, experiments=["one"]))
    finally:
        mlflow.set_tracking_uri(None)


WRITER = """
import sys
from mlflow.tracking import MlflowClient
client = MlflowClient(tracking_uri="sqlite:///" + sys.argv[1])
experiment = client.create_experiment("busy")
for name in ("a", "b"):
    run = client.create_run(experiment, run_name=name).info.run_id
    for step in range(100):
        client.log_metric(run, "loss", 1.0 / (step + 1), step=step)
    client.set_terminated(run)
"""


@pytest.mark.slow  # a writer process importing mlflow, and the schema fixture
def test_following_while_another_process_writes(database: Path) -> None:
    import subprocess
    import sys

    follower = MlflowFollower(database)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(database)])
    seen = set()
    try:
        while writer.poll() is None:
            runs, _ = follower.poll()
            seen.add(runs.history.select(pl.len()).collect().item())
            time.sleep(0.02)
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0  # the follower's reads never locked the writer out
    runs, _ = follower.poll()
    assert len(seen) > 2  # the history grew while it was written
    assert runs.runs["state"].to_list() == ["finished", "finished"]
    assert runs.history.select(pl.len()).collect().item() == 200
    assert_same(runs, load_mlflow(database))


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s, once a session)
def test_damaged_rows_are_warnings_as_in_a_load(database: Path) -> None:
    import sqlite3

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from rungroup.runs import LoadWarning

    client = MlflowClient(tracking_uri=f"sqlite:///{database}")
    experiment = client.create_experiment("damaged")
    run = client.create_run(experiment, run_name="a").info.run_id
    client.log_batch(run, metrics=[Metric("x", 1.0, 1_700_000_000_000 + s, s) for s in range(5)])
    with sqlite3.connect(database) as connection:
        first = connection.execute("SELECT min(rowid) FROM metrics").fetchone()[0]
        connection.execute("UPDATE metrics SET step = 'abc' WHERE rowid = ?", (first,))
        connection.execute(f"UPDATE runs SET start_time = {2**62}")
    follower = MlflowFollower(database)
    with pytest.warns(LoadWarning) as caught:
        runs, _ = follower.poll()
    messages = [str(w.message) for w in caught]
    assert any(f"{database}: table metrics, row {first}: step 'abc'" in m for m in messages)
    assert any(f"start_time {2**62} is not a time" in m for m in messages)
    assert runs.history.select(pl.len()).collect().item() == 4
    assert runs.runs["created_at"].to_list() == [None]
    with pytest.warns(LoadWarning):
        assert_same(runs, load_mlflow(database))
    follower.close()
