"""The chart's legend and the style fields of its rows: colours that stay with their group,
labels that say what was grouped, counts that tell the truth, stretches of fewer runs."""

from __future__ import annotations

import polars as pl
from widget_helpers import ask, make_runs, read

from rungroup.chart import FULL_PART, THIN_PART
from rungroup.palette import group_colours
from rungroup.runs import Runs
from rungroup.view import View
from rungroup.widget import Explorer
from rungroup.widget.legend import styled


def legend_of(widget: Explorer) -> dict:
    reply, _ = ask(widget, "data")
    assert reply["ok"], reply
    return reply["legend"]


def colours_drawn(widget: Explorer) -> dict[str, str]:
    _, buffers = ask(widget, "data")
    rows = read(buffers[0]).select(
        pl.col("series").cast(pl.String), pl.col("rg_colour").cast(pl.String)
    )
    return dict(rows.unique().iter_rows())


def test_the_legend_names_the_keys_and_each_group_as_key_value_with_its_count() -> None:
    widget = Explorer(make_runs(), group_by=["config.lr"])
    legend = legend_of(widget)
    assert legend["title"] == "config.lr"
    assert [(e["label"], e["n"], e["total"]) for e in legend["entries"]] == [
        ("lr=0.01", 3, 3),
        ("lr=0.1", 3, 3),
    ]
    assert legend["line"] == "mean" and legend["band"] == "mean ± std" and legend["x"] == "step"
    nested = legend_of(Explorer(make_runs(), group_by=["config.lr", "config.seed"]))
    assert nested["title"] == "config.lr / config.seed"
    assert nested["entries"][0]["label"] == "lr=0.01 · seed=0"


def test_reverse_grouping_names_only_the_keys_that_differ_between_groups() -> None:
    runs = make_runs()
    runs = Runs(runs.runs.with_columns(pl.lit(5).alias("config.epochs")), runs.history)
    widget = Explorer(runs, group_by=["config.seed"], reverse=True)
    legend = legend_of(widget)
    assert legend["title"] == "all config except config.seed"
    # config.epochs is the same in every run: not named
    assert [e["label"] for e in legend["entries"]] == ["lr=0.01", "lr=0.1"]


def test_hidden_runs_show_as_visible_of_total() -> None:
    widget = Explorer(make_runs(), group_by=["config.lr"])
    widget.hidden = ["r0"]
    entries = {e["label"]: (e["n"], e["total"]) for e in legend_of(widget)["entries"]}
    assert entries == {"lr=0.01": (3, 3), "lr=0.1": (2, 3)}


def test_a_groups_colour_is_the_same_whatever_else_is_hidden_filtered_or_dropped() -> None:
    widget = Explorer(make_runs(), group_by=["config.lr"])
    expected = group_colours(widget.runs, widget.view)
    assert colours_drawn(widget) == expected
    assert {e["series"]: e["colour"] for e in legend_of(widget)["entries"]} == expected
    # hide every run of one group: the other keeps its colour
    widget.hidden = ["r0", "r1", "r2"]
    assert colours_drawn(widget) == {"0.01": expected["0.01"]}
    widget.hidden = []
    widget.search = "b"  # the filter box keeps the lr=0.01 runs b0, b1, b2
    assert colours_drawn(widget) == {"0.01": expected["0.01"]}
    widget.search = ""
    widget.min_runs = 3
    assert colours_drawn(widget) == expected


def test_a_group_page_draws_its_runs_in_shades_of_the_groups_colour() -> None:
    widget = Explorer(make_runs(), group_by=["config.lr"])
    colour = group_colours(widget.runs, widget.view)["0.1"]
    widget.focus = "0.1"
    _, buffers = ask(widget, "data")
    rows = read(buffers[0]).with_columns(pl.col(pl.Categorical).cast(pl.String))
    group = rows.filter(pl.col("layer") == "group")["rg_colour"].unique().to_list()
    runs = rows.filter(pl.col("layer") == "run").unique("run")["rg_colour"].to_list()
    assert group == [colour]
    assert len(set(runs)) == 3 and all(c.startswith("#") for c in runs)
    entries = legend_of(widget)["entries"]
    assert (
        entries[0]["series"] == "0.1" and [e.get("run", False) for e in entries[1:]] == [True] * 3
    )


def test_stretches_with_fewer_runs_are_marked_and_meet_the_full_ones() -> None:
    frame = pl.DataFrame(
        {
            "series": ["a"] * 5 + ["b"] * 2,
            "metric": ["m"] * 7,
            "x": [0.0, 1, 2, 3, 4, 0, 1],
            "n": [3, 3, 2, 2, 3, 1, 1],
        }
    )
    parts = styled(frame, {"a": "#000000"}, group_page=False)["rg_part"].to_list()
    both = FULL_PART | THIN_PART
    # a: the full rows on either side of the drop also start and end the thin stretch;
    # b: n=1 all along is its most, so full
    assert parts == [FULL_PART, both, THIN_PART, THIN_PART, both, FULL_PART, FULL_PART]


def test_the_spec_does_not_change_with_the_grouping_only() -> None:
    widget = Explorer(make_runs(), group_by=["config.lr"])
    key = ask(widget, "data")[0]["spec_key"]
    widget.group_by = ["config.seed"]
    assert ask(widget, "data")[0]["spec_key"] == key
    assert View().grouping  # the default view groups
