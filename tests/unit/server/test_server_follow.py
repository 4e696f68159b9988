"""Following an MLflow store in PostgreSQL: polls read only the rows newer than the last."""

from __future__ import annotations

import polars as pl
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from polars.testing import assert_frame_equal
from server_helpers import Server, log_runs

import rungroup as rg
from rungroup.sources.followers import follow
from rungroup.sources.mlflow.postgres_follower import PostgresFollower

START = 1_700_000_000_000


def _points(first: int, last: int) -> list[tuple[int, int, float]]:
    return [(s, START + 1000 * s, 1.0 / (s + 1)) for s in range(first, last)]


def _same(a: rg.Runs, b: rg.Runs) -> None:
    assert_frame_equal(a.runs.sort("id"), b.runs.sort("id"))
    assert_frame_equal(
        a.history.collect().sort("run_id", "step"), b.history.collect().sort("run_id", "step")
    )


def test_polls_read_only_new_rows_and_equal_a_fresh_load(mlflow_server: Server) -> None:
    uri = mlflow_server.uri()
    options = {"experiments": ["followed"]}
    (first,) = log_runs(
        mlflow_server.tracking_uri,
        "followed",
        [{"params": {"lr": 0.1}, "tags": {"group": "a"}, "metrics": {"loss": _points(0, 200)}}],
    )
    follower = follow(uri, **options)
    assert isinstance(follower, PostgresFollower)
    runs, changed = follower.poll()
    assert changed and len(runs) == 1
    assert follower.rows_read["metrics"] <= 1  # only the newest row, not the history
    _same(runs, rg.load(uri, **options))

    same, changed = follower.poll()
    assert not changed and same is runs
    assert follower.rows_read["metrics"] <= 1

    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    client.log_batch(first, metrics=[Metric("loss", v, t, s) for s, t, v in _points(200, 230)])
    experiment = client.get_experiment_by_name("followed")
    assert experiment is not None
    second = client.create_run(experiment.experiment_id, start_time=START + 10).info.run_id
    client.log_batch(second, metrics=[Metric("loss", v, t, s) for s, t, v in _points(0, 5)])
    runs, changed = follower.poll()
    assert changed and len(runs) == 2
    # the 30 new points of the first run and the 5 of the second, and the row seen before
    assert follower.rows_read["metrics"] <= 36
    assert follower.rows_read["runs"] <= 2
    _same(runs, rg.load(uri, **options))
    assert runs.runs.filter(pl.col("id") == second)["state"].item() == "running"

    client.set_terminated(second, end_time=START + 99_000)
    runs, changed = follower.poll()
    assert changed
    assert runs.runs.filter(pl.col("id") == second)["state"].item() == "finished"
    _same(runs, rg.load(uri, **options))
