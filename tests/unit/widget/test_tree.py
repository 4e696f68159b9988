"""Nested grouping as a tree, and the keys the group-by controls offer and propose."""

from __future__ import annotations

import numpy as np
import polars as pl
from widget_helpers import ask, make_runs, read

from rungroup.runs import Runs
from rungroup.view import View
from rungroup.widget import Explorer
from rungroup.widget.keys import CONTINUOUS, IDENTIFIER, KEY, best_split, column_kind


def rows(widget: Explorer) -> list[dict]:
    reply, buffers = ask(widget, "table")
    assert reply["ok"], reply
    return read(buffers[0]).to_dicts()


def test_nested_groups_are_a_tree_with_each_levels_own_statistics(widget: Explorer) -> None:
    widget.update(group_by=["config.lr", "config.seed"], table_columns=["runs", "m:loss"])
    top = rows(widget)
    assert [(r["_kind"], r["name"], r["_depth"]) for r in top] == [
        ("branch", "lr=0.01", 0),
        ("branch", "lr=0.1", 0),
    ]
    # a branch's statistics are over all its runs (numpy on the runs' last values)
    finals = widget.runs.history.filter(pl.col("metric") == "loss").collect()
    last = finals.sort("step").group_by("run_id").agg(pl.col("value").last())
    lr = dict(zip(widget.runs.runs["id"], widget.runs.runs["config.lr"], strict=True))
    values = [v for r, v in last.iter_rows() if lr[str(r)] == 0.1]
    mean, std = np.mean(values), np.std(values, ddof=1)
    cell = next(r for r in top if r["name"] == "lr=0.1")["m:loss"]
    assert cell == f"{mean:.4g} ± {std:.2g}"
    widget.expanded = ["0.1", "0.1 / 1"]
    opened = [(r["_kind"], r["name"], r["_depth"]) for r in rows(widget)]
    assert opened == [
        ("branch", "lr=0.01", 0),
        ("branch", "lr=0.1", 0),
        ("group", "seed=0", 1),
        ("group", "seed=1", 1),
        ("run", "a1", 2),
        ("group", "seed=2", 1),
    ]


def test_hiding_a_branch_hides_every_run_under_it(widget: Explorer) -> None:
    widget.group_by = ["config.lr", "config.seed"]
    reply, _ = ask(widget, "hide", row_kind="branch", key="0.1", hide=True)
    assert reply["ok"] and sorted(widget.hidden) == ["r0", "r1", "r2"]


def test_reverse_or_single_key_grouping_stays_flat(widget: Explorer) -> None:
    widget.update(group_by=["config.lr"])
    assert {r["_kind"] for r in rows(widget)} == {"group"}
    widget.update(group_by=["config.lr"], reverse=True)
    assert {r["_kind"] for r in rows(widget)} == {"group"}


def test_identifiers_and_continuous_columns_are_set_apart() -> None:
    assert column_kind("name", pl.String(), 6, 6) == IDENTIFIER
    assert column_kind("config.run_tag", pl.String(), 40, 40) == IDENTIFIER
    assert column_kind("config.opt", pl.String(), 3, 3) == KEY  # a few runs, a few settings
    assert column_kind("summary.loss", pl.Float64(), 40, 40) == CONTINUOUS
    assert column_kind("config.lr", pl.Float64(), 4, 40) == KEY
    kinds = {c["name"]: c["kind"] for c in Explorer(make_runs()).info["columns"]}
    assert kinds["name"] == IDENTIFIER and kinds["config.lr"] == KEY


def test_plus_proposes_the_key_that_splits_the_current_groups() -> None:
    base = make_runs()
    frame = base.runs.with_columns(
        pl.Series("config.opt", ["adam"] * 6),  # constant: splits nothing
        pl.Series("config.fold", [0, 0, 1, 0, 0, 1]),  # splits each lr group in two
    )
    runs = Runs(frame, base.history)
    # seed splits each lr group in three: fold is the coarser split of as many groups
    widget = Explorer(runs, group_by=["config.lr"])
    assert ask(widget, "suggest_key")[0]["key"] == "config.fold"
    offered = widget.info["columns"]
    assert best_split(runs, View(group_by=("config.lr", "config.fold")), offered) == "config.seed"
