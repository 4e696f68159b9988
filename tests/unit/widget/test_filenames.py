"""Download file names say what they hold: project, metrics, grouping, what."""

from __future__ import annotations

import polars as pl
from widget_helpers import ask, make_runs

from rungroup.runs import Runs
from rungroup.view import View
from rungroup.widget import Explorer
from rungroup.widget.filenames import export_name, project_name


def test_a_name_holds_project_metrics_grouping_and_what() -> None:
    runs = make_runs()
    runs = Runs(runs.runs.with_columns(pl.lit("vision/resnet 50").alias("project")), runs.history)
    widget = Explorer(runs, group_by=["config.lr", "config.seed"])
    names = {what: ask(widget, "export", what=what)[0]["filename"] for what in ("csv", "parquet")}
    assert names == {
        "csv": "vision-resnet-50_acc-loss_by-lr-seed_aggregated.csv",
        "parquet": "vision-resnet-50_acc-loss_by-lr-seed_aggregated.parquet",
    }
    widget.update(grouping=False, metrics=["loss"])
    assert ask(widget, "export", what="groups_csv")[0]["filename"] == (
        "vision-resnet-50_loss_per-run_groups.csv"
    )


def test_a_group_page_and_reverse_grouping_are_named() -> None:
    widget = Explorer(make_runs(), group_by=["config.seed"], reverse=True)
    widget.focus = "0.1"
    assert ask(widget, "export", what="recipe")[0]["filename"] == (
        "runs_acc-loss_all-config-except-seed_group-0.1_recipe.json"
    )


def test_no_project_falls_back_to_the_source_folder_and_names_stay_short() -> None:
    runs = make_runs()
    frame = runs.runs.with_columns(
        pl.lit(None, dtype=pl.String).alias("project"), pl.lit("/data/exp-7/run-1").alias("source")
    )
    assert project_name(Runs(frame, runs.history)) == "run-1"
    long = export_name(runs, View(), [f"metric{i}" for i in range(50)], "aggregated", ".csv")
    assert long.endswith("_50-metrics_by-group_aggregated.csv") and len(long) < 160
