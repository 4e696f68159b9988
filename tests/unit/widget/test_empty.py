"""What the chart area says when there is nothing, or not everything, to draw."""

from __future__ import annotations

import polars as pl
from widget_helpers import ask, make_runs

from rungroup.runs import Runs
from rungroup.widget import Explorer


def reply(widget: Explorer) -> dict:
    body, _ = ask(widget, "data")
    assert body["ok"], body
    return body


def test_a_filter_that_matches_nothing_names_the_filter() -> None:
    widget = Explorer(make_runs())
    widget.search = "xyz"
    assert reply(widget)["empty"] == "No runs match 'xyz'"
    widget.search = ""
    assert reply(widget)["empty"] is None


def test_every_run_hidden_and_too_few_runs_per_point_say_why() -> None:
    widget = Explorer(make_runs())
    widget.hidden = [f"r{i}" for i in range(6)]
    assert reply(widget)["empty"].startswith("Every run is hidden")
    widget.hidden = []
    widget.min_runs = 7
    assert reply(widget)["empty"] == "No point has 7 runs or more (min runs per point)"


def test_a_metric_without_finite_values_is_named() -> None:
    runs = make_runs()
    nan_acc = pl.when(pl.col("metric") == "acc").then(float("nan")).otherwise(pl.col("value"))
    widget = Explorer(Runs(runs.runs, runs.history.with_columns(nan_acc.alias("value"))))
    body = reply(widget)
    assert body["empty"] is None and body["no_values"] == ["acc"]
    widget.metrics = ["acc"]
    assert reply(widget)["empty"] == "No finite values of acc in the runs shown"
