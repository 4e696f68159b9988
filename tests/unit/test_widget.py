"""rungroup.Explorer without a browser: traits <-> View, requests and replies, payloads, errors."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from traitlets import TraitError

from rungroup import protocol
from rungroup import widget as widget_module
from rungroup.export import read_recipe
from rungroup.runs import Runs
from rungroup.view import View
from rungroup.widget import UI_FIELDS, VIEW_FIELDS, WIDGET_POINTS, Explorer

XSS = "<img src=x onerror=alert(1)>"


def make_runs(n_steps: int = 20) -> Runs:
    """Six runs: two lr groups x three seeds (one named with markup), two metrics."""
    ids = [f"r{i}" for i in range(6)]
    runs = pl.DataFrame(
        {
            "id": ids,
            "name": ["a0", "a1", XSS, "b0", "b1", "b2"],
            "group": ["exp"] * 6,
            "job_type": ["train"] * 5 + ["eval"],
            "state": ["finished"] * 6,
            "config.lr": [0.1, 0.1, 0.1, 0.01, 0.01, 0.01],
            "config.seed": [0, 1, 2, 0, 1, 2],
        }
    )
    rows = []
    for i, run_id in enumerate(ids):
        for step in range(n_steps):
            for metric, scale in (("loss", 1.0), ("acc", 0.5)):
                value = scale * (i + 1) / (step + 1)
                rows.append((run_id, metric, step, 0.5 * step + i, value))
    history = pl.DataFrame(
        rows, schema=["run_id", "metric", "step", "time", "value"], orient="row"
    ).with_columns(
        timestamp=pl.datetime(2026, 1, 1, time_zone="UTC") + pl.duration(seconds=pl.col("time"))
    )
    return Runs(runs, history)


@pytest.fixture
def runs() -> Runs:
    return make_runs()


@pytest.fixture
def widget(runs: Runs) -> Explorer:
    return Explorer(runs)


def ask(widget: Explorer, kind: str, **body: Any) -> tuple[dict[str, Any], list[bytes]]:
    return widget.handle({"kind": kind, "id": 7, **body})


def read_recipe_bytes(parquet: bytes) -> str:
    metadata = pl.read_parquet_metadata(io.BytesIO(parquet))
    return next(v for k, v in metadata.items() if "rungroup" in k)


def read(buffer: bytes) -> pl.DataFrame:
    return pl.read_ipc_stream(io.BytesIO(buffer))


# --- traits <-> View


def test_one_synced_trait_per_view_field(widget: Explorer) -> None:
    assert View.field_names() == VIEW_FIELDS
    synced = set(widget.keys)
    for name in (*VIEW_FIELDS, *UI_FIELDS, "error", "info"):
        assert name in synced, name
    assert widget.view == View(points=WIDGET_POINTS)
    assert widget.view.replace(points=View().points) == View()


def test_settings_become_traits_and_view(runs: Runs) -> None:
    w = Explorer(runs, group_by="config.lr", band="stderr", quantiles=(0.1, 0.9), hidden={"r1"})
    assert w.group_by == ["config.lr"]
    assert w.band == "stderr"
    assert w.quantiles == [0.1, 0.9]
    assert w.hidden == ["r1"]
    assert w.view == View(
        group_by=("config.lr",),
        band="stderr",
        quantiles=(0.1, 0.9),
        hidden=frozenset({"r1"}),
        points=WIDGET_POINTS,
    )


def test_trait_changes_update_view_and_back(widget: Explorer) -> None:
    seen: list[str] = []
    widget.observe(lambda change: seen.append(change["name"]), names=["band", "group_by"])
    widget.band = "ci"
    widget.group_by = ["config.lr", "config.seed"]
    assert widget.view.band == "ci"
    assert widget.view.group_by == ("config.lr", "config.seed")
    assert seen == ["band", "group_by"]
    widget.view = View(line="median", grouping=False)
    assert (widget.line, widget.grouping, widget.band) == ("median", False, "std")
    assert widget.points == View().points  # a whole View replaces every field


def test_update_validates_several_settings_together(widget: Explorer) -> None:
    with pytest.raises(TraitError):
        widget.smoothing = "window"  # the default strength 0.6 is no window length
    widget.update(smoothing="window", smoothing_param=5)
    assert widget.view.smoothing == "window"
    assert widget.view.smoothing_param == 5.0


@pytest.mark.parametrize(
    ("name", "value", "listed"),
    [
        ("band", "fuzzy", "stderr"),
        ("line", "average", "iqm"),
        ("group_by", ["config.nope"], "config.lr"),
        ("metrics", ["accuracy"], "loss"),
        ("x", "epoch", "timestamp"),
        ("align", "nearest", "interpolate"),
    ],
)
def test_invalid_settings_list_the_valid_choices(
    widget: Explorer, name: str, value: Any, listed: str
) -> None:
    before = getattr(widget, name)
    with pytest.raises(TraitError, match=listed):
        setattr(widget, name, value)
    assert getattr(widget, name) == before


def test_invalid_constructor_arguments(runs: Runs) -> None:
    with pytest.raises(TypeError, match="valid settings: metrics, group_by"):
        Explorer(runs, colour="red")
    with pytest.raises(ValueError, match="choose one of"):
        Explorer(runs, band="wide")
    with pytest.raises(ValueError, match=r"config\.lr"):
        Explorer(runs, group_by="lr")


def test_browser_changes_are_validated_and_shown(widget: Explorer) -> None:
    widget.set_state({"band": "bogus"})
    assert widget.band == "std"
    assert "choose one of" in widget.error
    reply, _ = ask(widget, "data")  # the browser redraws after the undo...
    assert reply["ok"] and "choose one of" in widget.error  # ...and the message stays
    widget.set_state({"band": "minmax", "line": "max"})
    assert (widget.band, widget.line) == ("minmax", "max")
    assert widget.error == ""


# --- requests and replies


def test_data_reply_carries_spec_and_chart_rows(widget: Explorer) -> None:
    reply, buffers = ask(widget, "data")
    assert reply["ok"] and reply["id"] == 7 and reply["kind"] == "data"
    spec = reply["spec"]
    assert "values" not in json.dumps(spec)  # the rows travel as Arrow, not in the spec
    assert len(buffers) == 1  # the table has a reply of its own
    chart = read(buffers[0])
    assert chart.height == reply["chart_rows"] == widget.aggregated.height
    assert set(chart["series"].unique()) == {"0.01", "0.1"} or chart["series"].n_unique() >= 1
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
    order = read(buffers[0]).select("series", protocol.ORDER_FIELD).unique().sort("rg_order")
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
    assert rows["_key"].to_list()[:2] == ["0.1", "r2"] or rows["_kind"][0] == "group"
    runs_in_group = rows.filter(pl.col("_kind") == "run")["_key"].to_list()
    assert runs_in_group == ["r2", "r1", "r0"]  # larger final loss first


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
    (building one with Altair costs hundreds of milliseconds)."""
    built: list[int] = []
    chart = widget_module._chart
    monkeypatch.setattr(widget_module, "_SPECS", {})
    monkeypatch.setattr(widget_module, "_chart", lambda *a: built.append(1) or chart(*a))
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
        "error": "unknown request kind 'teleport'; valid kinds: data, table, rows, hide, export",
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

    monkeypatch.setattr("rungroup.widget.aggregate_drawn", broken)
    reply, _ = ask(widget, "data")
    assert not reply["ok"]
    assert reply["error"] == "RuntimeError: engine exploded"
    assert widget.error == "RuntimeError: engine exploded"


def test_search_filters_runs(widget: Explorer) -> None:
    widget.search = "B"
    reply, _ = ask(widget, "table")
    assert reply["runs"] == 3
    assert widget.selected_runs == ["r3", "r4", "r5"]
    widget.search = "eval"  # job type
    assert widget.selected_runs == ["r5"]


def test_exports(widget: Explorer, tmp_path: Path) -> None:
    reply, buffers = ask(widget, "export", what="csv")
    assert reply["filename"].endswith(".csv")
    frame = pl.read_csv(io.BytesIO(buffers[0]))
    assert frame.height == widget.aggregated.height
    reply, buffers = ask(widget, "export", what="parquet")
    assert "rungroup_view" in json.loads(read_recipe_bytes(buffers[0]))
    reply, buffers = ask(widget, "export", what="recipe")
    assert json.loads(buffers[0])["rungroup_view"]["band"] == "std"
    path = widget.export(tmp_path / "agg.csv")
    assert pl.read_csv(path).height == widget.aggregated.height
    recipe = json.loads((tmp_path / "agg.csv.recipe.json").read_text())
    assert View.from_dict(recipe["rungroup_view"]) == widget.view
    parquet = widget.export(tmp_path / "agg.parquet")
    assert View.from_dict(read_recipe(parquet)["rungroup_view"]) == widget.view
    with pytest.raises(ValueError, match=r"\.csv"):
        widget.export(tmp_path / "agg.xlsx")


def test_info_lists_columns_with_distinct_counts(widget: Explorer) -> None:
    columns = {c["name"]: c["distinct"] for c in widget.info["columns"]}
    assert columns["config.lr"] == 2
    assert columns["config.seed"] == 3
    assert widget.info["metrics"] == ["acc", "loss"]
    assert widget.info["x_choices"][:3] == ["step", "time", "timestamp"]
    assert "quantile" in widget.info["choices"]["band"]


def test_bytes_per_update_do_not_grow_with_steps() -> None:
    small = Explorer(make_runs(n_steps=200), points=100)
    large = Explorer(make_runs(n_steps=2000), points=100)
    _, small_buffers = ask(small, "data")
    _, large_buffers = ask(large, "data")
    assert len(large_buffers[0]) <= len(small_buffers[0]) * 1.05


@pytest.mark.parametrize(
    "settings",
    [
        {"x": "time"},
        {"x": "timestamp"},
        {"x": "acc", "metrics": ["loss"]},
        {"smoothing": "ema", "smoothing_param": 0.8},
        {"smoothing": "window", "smoothing_param": 3, "smooth_order": "after"},
        {"band": "quantile", "quantiles": [0.1, 0.9], "line": "iqm"},
        {"band": "ci", "ci_method": "bootstrap", "bootstrap_samples": 200},
        {"align": "bucket", "points": 5},
        {"log_y": True, "min_runs": 2},
        {"reverse": True, "group_by": ["config.seed"]},
        {"group_by": ["job_type", "config.lr"]},
    ],
)
def test_every_setting_reaches_the_chart(runs: Runs, settings: dict[str, Any]) -> None:
    w = Explorer(runs)
    w.update(**settings)
    reply, buffers = ask(w, "data")
    assert reply["ok"], reply.get("error")
    chart = read(buffers[0])
    assert chart.height == reply["chart_rows"] == w.aggregated.height > 0
    assert w.view == View(**{"points": WIDGET_POINTS, **settings})


def test_hover_signal_and_emphasis_are_in_the_spec(widget: Explorer) -> None:
    spec = widget.spec
    assert {"name": protocol.HOVER_SIGNAL, "value": None} in spec["params"]
    assert protocol.HOVER_SIGNAL in json.dumps(spec)


def units(spec: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "mark" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return found


def partition_covers(spec: dict[str, Any], rows: pl.DataFrame) -> bool:
    """Every chart row in exactly one of the spec's datasets (tooltip datasets aside)."""
    datasets = [d for d in spec["usermeta"]["rungroup"]["datasets"] if "tip_of" not in d]
    counts = [
        rows.filter(*[pl.col(k).cast(pl.String) == v for k, v in d["where"].items()]).height
        for d in datasets
    ]
    return sum(counts) == rows.height and all(c > 0 for c in counts)


def test_each_panel_reads_a_dataset_of_its_own(widget: Explorer) -> None:
    """No panel filters the whole frame in Vega: the browser splits the rows by metric once,
    and the tooltip points of a panel read the hovered series' rows alone."""
    widget.group_by = ["config.lr"]
    reply, buffers = ask(widget, "data")
    spec = reply["spec"]
    datasets = spec["usermeta"]["rungroup"]["datasets"]
    metrics = widget.aggregated["metric"].unique(maintain_order=True).to_list()
    main = [d for d in datasets if "tip_of" not in d]
    tips = [d for d in datasets if "tip_of" in d]
    assert [d["where"] for d in main] == [{"metric": m} for m in metrics]
    assert [d["tip_of"] for d in tips] == [d["name"] for d in main]
    for unit in units(spec):
        assert unit["data"]["name"] in {d["name"] for d in datasets}
        assert "filter" not in json.dumps(unit.get("transform", []))
        tip = unit["mark"].get("opacity") == 0 if isinstance(unit["mark"], dict) else False
        assert unit["data"]["name"].startswith(protocol.TIP_PREFIX if tip else protocol.PART_PREFIX)
    assert "data" not in spec
    assert partition_covers(spec, read(buffers[0]))


def test_a_spec_without_panel_filters_keeps_one_dataset() -> None:
    """A spec whose units are not picked by field predicates alone is not split: one dataset,
    and the tooltip points filter the hovered series themselves."""
    spec = {
        "data": {"name": "x", "values": [{"series": "a"}]},
        "layer": [
            {"mark": "line", "encoding": {"x": {"field": "x", "type": "quantitative"}}},
            {
                "mark": {"type": "circle", "opacity": 0},
                "transform": [{"filter": "datum.n > 1"}],
                "encoding": {"x": {"field": "x", "type": "quantitative"}},
            },
        ],
    }
    prepared, _ = protocol.prepare_spec(spec)
    assert "usermeta" not in prepared
    assert prepared["data"] == {"name": protocol.DATA_NAME}
    tip = prepared["layer"][1]
    assert tip["transform"][0] == {"filter": "datum.n > 1"}
    assert protocol.HOVER_SIGNAL in tip["transform"][1]["filter"]


def test_recent_frames_are_reused(widget: Explorer) -> None:
    first = widget.aggregated
    widget.group_by = ["config.lr"]
    by_lr = widget.aggregated
    assert by_lr is not first
    widget.group_by = ["group"]
    assert widget.aggregated is first  # computed once, shown again
    widget.hidden = ["r0"]
    assert widget.aggregated is not first  # another view: computed afresh
