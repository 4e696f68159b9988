"""Group rows tell the truth: visible of total runs, how many values a config key has."""

from __future__ import annotations

import polars as pl
from widget_helpers import ask, read

from rungroup.widget import Explorer


def table(widget: Explorer) -> pl.DataFrame:
    reply, buffers = ask(widget, "table")
    assert reply["ok"], reply
    return read(buffers[0])


def test_hidden_runs_show_as_visible_of_total_and_differing_config_as_a_count(
    widget: Explorer,
) -> None:
    widget.update(group_by=["config.lr"], table_columns=["runs", "config.seed", "config.lr"])
    widget.hidden = ["r0"]
    rows = {r["_key"]: r for r in table(widget).iter_rows(named=True)}
    assert rows["0.1"]["runs"] == "2 of 3" and rows["0.01"]["runs"] == "3"
    assert rows["0.1"]["config.seed"] == "3 values" and rows["0.1"]["_mixed"] == "config.seed"
    assert rows["0.1"]["config.lr"] == "0.1"


def test_the_status_counts_follow_the_group_page(widget: Explorer) -> None:
    widget.group_by = ["config.lr"]
    reply, _ = ask(widget, "table")
    assert (reply["runs"], reply["groups"], reply["group_label"]) == (6, 2, None)
    widget.focus = "0.1"
    reply, _ = ask(widget, "table")
    assert (reply["runs"], reply["groups"], reply["group_label"]) == (3, 1, "lr=0.1")


def test_the_group_table_export_has_counts_beside_empty_values(widget: Explorer) -> None:
    widget.group_by = ["config.lr"]
    _, buffers = ask(widget, "export", what="groups_csv")
    written = pl.read_csv(bytes(buffers[0]))
    assert written["config.seed"].to_list() == [None, None]
    assert written["config.seed.values"].to_list() == [3, 3]
