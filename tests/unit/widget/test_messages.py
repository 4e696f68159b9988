"""The browser's requests and the widget's replies: chart rows, spec, table pages, errors."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest
from widget_helpers import XSS, ask, data_names, make_runs, partition_covers, read, units

from rungroup.chart import BAND_PARAM, ISOLATED_PARAM, ORDER_FIELD, PART_PREFIX
from rungroup.runs import Runs
from rungroup.widget import Explorer
from rungroup.widget import session as session_module

# --- requests and replies


def test_data_reply_carries_spec_and_chart_rows(widget: Explorer) -> None:
    reply, buffers = ask(widget, "data")
    assert reply["ok"] and reply["id"] == 7 and reply["kind"] == "data"
    spec = reply["spec"]
    assert "values" not in json.dumps(spec)  # the rows travel as Arrow, not in the spec
    assert len(buffers) == 1  # the table has a reply of its own
    chart = read(buffers[0])
    assert chart.height == reply["chart_rows"] == widget.aggregated.height
    assert set(chart["series"].unique()) == {"exp"}  # the default group_by: the runs' group
    # the same spec is not sent twice
    again, _ = ask(widget, "data", spec_key=reply["spec_key"])
    assert again["spec"] is None and again["spec_key"] == reply["spec_key"]


def test_table_reply_carries_columns_counts_and_first_page(widget: Explorer) -> None:
    widget.group_by = ["config.lr"]
    reply, buffers = ask(widget, "table", limit=1)
    assert reply["ok"] and reply["kind"] == "table" and reply["runs"] == 6
    assert reply["groups"] == widget.summary.height == 2
    assert read(buffers[0]).height == 1 < reply["table"]["total"] == 2
    assert "m:loss" in [column["name"] for column in reply["table"]["columns"]]


def test_group_by_change_keeps_the_spec_and_sends_only_data(widget: Explorer) -> None:
    first, _ = ask(widget, "data")
    widget.group_by = ["config.lr"]
    second, buffers = ask(widget, "data", spec_key=first["spec_key"])
    assert second["spec"] is None  # the browser swaps the data of its Vega view
    order = read(buffers[0]).select("series", ORDER_FIELD).unique().sort("rg_order")
    assert (
        order["series"].to_list()
        == widget.aggregated["series"].unique(maintain_order=True).to_list()
    )
    widget.band = "none"
    third, _ = ask(widget, "data", spec_key=first["spec_key"])
    assert third["spec"] is not None  # another shape: embedded again


def test_chart_shows_exactly_the_aggregate(widget: Explorer) -> None:
    widget.group_by = ["config.lr"]
    _, buffers = ask(widget, "data")
    chart = read(buffers[0])
    agg = widget.aggregated
    assert chart["series"].to_list() == agg["series"].to_list()
    assert chart["x"].to_list() == agg["x"].to_list()
    assert chart["line"].to_list() == pytest.approx(agg["line"].to_list(), rel=1e-6)
    assert sorted(chart["series"].unique()) == ["0.01", "0.1"]
    assert chart.schema["line"] == pl.Float32  # half the bytes on the wire
    assert chart.schema["series"] == pl.Categorical  # labels once, then 4-byte codes


def test_grouping_off_gives_one_series_per_run(widget: Explorer) -> None:
    widget.grouping = False
    _, buffers = ask(widget, "data")
    assert read(buffers[0])["series"].n_unique() == 6
    reply, _ = ask(widget, "table")
    assert reply["table"]["total"] == 6
    assert reply["groups"] == 0


def test_table_rows_groups_expand_and_sort(widget: Explorer) -> None:
    widget.group_by = ["config.lr"]
    reply, buffers = ask(widget, "table")
    rows = read(buffers[0])
    assert rows["_kind"].to_list() == ["group", "group"]
    assert rows["_count"].to_list() == [3, 3]
    assert rows["runs"].to_list() == ["3", "3"]
    loss = rows["m:loss"].to_list()
    assert all("±" in cell for cell in loss)
    widget.expanded = ["0.1"]
    reply, buffers = ask(widget, "table")
    rows = read(buffers[0])
    assert reply["table"]["total"] == 5
    assert rows["_kind"].to_list() == ["group", "group", "run", "run", "run"]
    assert rows["_series"].to_list()[2:] == ["0.1"] * 3
    widget.sort = ["m:loss", "desc"]
    _, buffers = ask(widget, "table")
    rows = read(buffers[0])
    # groups by their mean final loss (0.01: 0.25, 0.1: 0.1), then runs by theirs, larger first
    assert rows["_key"].to_list() == ["0.01", "0.1", "r2", "r1", "r0"]


def test_rows_are_paged(runs: Runs) -> None:
    w = Explorer(runs, grouping=False)
    reply, buffers = ask(w, "rows", offset=2, limit=3)
    assert reply["ok"] and reply["offset"] == 2 and reply["total"] == 6
    assert read(buffers[0]).height == 3
    reply, buffers = ask(w, "rows", offset=5, limit=100)
    assert read(buffers[0]).height == 1


def test_run_text_stays_text(runs: Runs) -> None:
    w = Explorer(runs, grouping=False)
    _, buffers = ask(w, "rows", offset=0, limit=10)
    assert XSS in read(buffers[0])["name"].to_list()


def test_hide_runs_and_groups(widget: Explorer) -> None:
    widget.group_by = ["config.lr"]
    full = widget.aggregated.filter(pl.col("series") == "0.1")["n"].max()
    reply, _ = ask(widget, "hide", row_kind="run", key="r0", hide=True)
    assert reply["ok"] and widget.hidden == ["r0"]
    assert widget.aggregated.filter(pl.col("series") == "0.1")["n"].max() == full - 1
    assert "r0" not in widget.selected_runs
    ask(widget, "hide", row_kind="group", key="0.01", hide=True)
    assert widget.hidden == ["r0", "r3", "r4", "r5"]
    assert widget.aggregated["series"].unique().to_list() == ["0.1"]
    _, buffers = ask(widget, "table")
    rows = read(buffers[0])
    # a hidden group keeps its row, so that it can be shown again
    assert rows.filter(pl.col("_key") == "0.01")["_hidden"].to_list() == [True]
    ask(widget, "hide", row_kind="group", key="0.01", hide=False)
    assert widget.hidden == ["r0"]


def test_group_page(widget: Explorer) -> None:
    widget.group_by = ["config.lr"]
    widget.focus = "0.1"
    reply, buffers = ask(widget, "data")
    assert reply["focus_label"] == "0.1"
    agg = widget.aggregated
    assert set(agg["layer"].unique()) == {"group", "run"}
    assert agg.filter(pl.col("layer") == "run")["run"].n_unique() == 3
    assert agg["series"].unique().to_list() == ["0.1"]
    # its table lists its runs with the config keys that differ between them
    table, table_buffers = ask(widget, "table")
    assert table["focus_label"] == "0.1"
    rows = read(table_buffers[0])
    assert rows["_key"].to_list() == ["r2", "r0", "r1"]  # by name: "<img..." < "a0"
    # each run is its own series there (its thin line), for hover emphasis
    assert rows["_series"].to_list() == [XSS, "a0", "a1"]
    assert set(agg.filter(pl.col("layer") == "run")["run"]) == {XSS, "a0", "a1"}
    names = [c["name"] for c in table["table"]["columns"]]
    assert "config.seed" in names and "config.lr" not in names
    # the runs' thin lines and the group's line and band read datasets of their own
    datasets = reply["spec"]["usermeta"]["rungroup"]["datasets"]
    assert {d["where"]["layer"] for d in datasets} == {"group", "run"}
    assert partition_covers(reply["spec"], read(buffers[0]))
    widget.focus = ""
    reply, _ = ask(widget, "data")
    assert reply["focus_label"] is None


def test_group_pages_share_one_spec(widget: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening another group's page sends its rows, not another spec, and builds none
    (building one with Altair costs milliseconds)."""
    built: list[int] = []
    build = session_module.widget_spec
    monkeypatch.setattr(
        session_module, "widget_spec", lambda *a, **k: built.append(1) or build(*a, **k)
    )
    widget.group_by = ["config.lr"]
    widget.focus = "0.1"
    first, _ = ask(widget, "data")
    assert len(built) == 1
    widget.focus = "0.01"
    second, buffers = ask(widget, "data", spec_key=first["spec_key"])
    assert len(built) == 1
    assert second["focus_label"] == "0.01"
    assert second["spec"] is None and second["spec_key"] == first["spec_key"]
    runs = widget.aggregated.filter(pl.col("layer") == "run")["run"].unique().sort()
    assert runs.to_list() == ["b0", "b1", "b2"]
    assert partition_covers(first["spec"], read(buffers[0]))


def test_errors_are_answered_and_shown(widget: Explorer) -> None:
    reply, buffers = ask(widget, "teleport")
    assert reply == {
        "kind": "teleport",
        "id": 7,
        "ok": False,
        "error": (
            "unknown request kind 'teleport'; valid kinds: "
            "data, table, rows, hide, suggest_key, compare, export"
        ),
    }
    assert buffers == []
    assert "teleport" in widget.error
    reply, _ = ask(widget, "rows", offset=-1)
    assert not reply["ok"] and "offset" in reply["error"]
    reply, _ = ask(widget, "data")
    assert reply["ok"] and widget.error == ""


def test_engine_errors_are_shown(widget: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> pl.DataFrame:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr("rungroup.engine.workspace.Workspace.aggregate_drawn", broken)
    reply, _ = ask(widget, "data")
    assert not reply["ok"]
    assert reply["error"] == "RuntimeError: engine exploded"
    assert widget.error == "RuntimeError: engine exploded"


def test_bytes_per_update_do_not_grow_with_steps() -> None:
    small = Explorer(make_runs(n_steps=200), points=100)
    large = Explorer(make_runs(n_steps=2000), points=100)
    _, small_buffers = ask(small, "data")
    _, large_buffers = ask(large, "data")
    assert len(large_buffers[0]) <= len(small_buffers[0]) * 1.05


def test_hovering_needs_nothing_of_the_spec(widget: Explorer) -> None:
    """The hovered series is drawn over the view by the browser: no parameter of the spec
    names it, so a hover never makes Vega encode and paint every mark again."""
    spec = widget.spec
    assert [p["name"] for p in spec["params"]] == [ISOLATED_PARAM, BAND_PARAM]
    assert "rg_hover" not in json.dumps(spec)


def test_each_panel_reads_a_dataset_of_its_own(widget: Explorer) -> None:
    """No panel filters the whole frame in Vega: the browser splits the rows by metric once."""
    widget.group_by = ["config.lr"]
    reply, buffers = ask(widget, "data")
    spec = reply["spec"]
    datasets = spec["usermeta"]["rungroup"]["datasets"]
    metrics = widget.aggregated["metric"].unique(maintain_order=True).to_list()
    assert [d["where"] for d in datasets] == [{"metric": m} for m in metrics]
    assert data_names(spec) == {d["name"] for d in datasets}
    assert all(name.startswith(PART_PREFIX) for name in data_names(spec))
    for unit in units(spec):
        assert "filter" not in json.dumps(unit.get("transform", []))
    assert "data" not in spec
    assert partition_covers(spec, read(buffers[0]))


def test_a_data_request_for_settings_the_kernel_has_not_seen_is_answered_stale(
    widget: Explorer,
) -> None:
    """marimo sends trait updates and messages apart: a request can arrive before the change
    it is for; the reply says so (the browser asks again) instead of drawing old settings."""
    widget.group_by = ["config.lr"]
    reply, buffers = ask(widget, "data", view={"group_by": ["config.seed"]})
    assert reply["ok"] and reply["stale"] is True and buffers == []
    reply, buffers = ask(widget, "data", view={"group_by": ["config.lr"], "hidden": []})
    assert reply["ok"] and "stale" not in reply and len(buffers) == 1
