"""rungroup.Explorer without a browser: traits <-> View, validation, data read back, exports."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from traitlets import TraitError
from widget_helpers import ask, read, read_recipe_bytes

from rungroup.export import read_recipe
from rungroup.runs import Runs
from rungroup.view import View
from rungroup.widget import Explorer
from rungroup.widget.explorer import UI_FIELDS
from rungroup.widget.table import PAGE_SIZE
from rungroup.widget.traits import PRESETS, VIEW_FIELDS


def test_one_synced_trait_per_view_field(widget: Explorer) -> None:
    assert View.field_names() == VIEW_FIELDS
    synced = set(widget.keys)
    for name in (*VIEW_FIELDS, *UI_FIELDS, "error", "info"):
        assert name in synced, name
    assert widget.view == View(**PRESETS)
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
        **PRESETS,
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
    assert "quantile" in [c["value"] for c in widget.info["choices"]["band"]]


def test_info_carries_the_settings_contract(widget: Explorer) -> None:
    info = widget.info
    assert info["fields"] == list(View.field_names())
    assert info["defaults"] == View().to_dict()
    assert json.loads(json.dumps(info)) == info  # JSON as it travels
    assert set(info["choices"]) == {
        "line",
        "band",
        "ci_method",
        "align",
        "smoothing",
        "smooth_order",
        "x",
    }
    for name, choices in info["choices"].items():
        values = [c["value"] for c in choices]
        assert values == list(dict.fromkeys(values))
        for choice in choices:  # every value offered is one the View takes
            strength = {"smoothing_param": choice["param"]} if "param" in choice else {}
            assert getattr(View(**{name: choice["value"], **strength}), name) == choice["value"]
        if name != "x":  # x also takes any metric name
            with pytest.raises(ValueError, match="choose one of"):
                View(**{name: "bogus"})
        assert all(c["label"] and c["help"] for c in choices)
    labels = {c["value"]: c["label"] for c in info["choices"]["band"]}
    assert labels["ci"] == "confidence interval" and labels["none"] == "off"
    assert info["page_size"] == PAGE_SIZE
    assert info["ui_fields"] == list(UI_FIELDS)
    # which inputs show with which band
    uses = {c["value"]: c["uses"] for c in info["choices"]["band"]}
    assert uses["ci"] == ["ci_level", "ci_method"] and uses["quantile"] == ["quantiles"]
    assert uses["std"] == []
    # what the strength field means and where it starts, per method and axis
    smoothing = {c["value"]: c for c in info["choices"]["smoothing"]}
    assert smoothing["window"]["param"] == 5 and smoothing["ema"]["param_max"] == 0.999
    assert smoothing["gaussian"]["param_help"]["time"] == "gaussian sigma in seconds"
    assert {c["value"]: c["label"] for c in info["choices"]["x"]}["timestamp"] == "wall time"


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
    assert w.view == View(**{**PRESETS, **settings})


def test_recent_frames_are_reused(widget: Explorer) -> None:
    first = widget.aggregated
    widget.group_by = ["config.lr"]
    by_lr = widget.aggregated
    assert by_lr is not first
    widget.group_by = ["group"]
    assert widget.aggregated is first  # computed once, shown again
    widget.hidden = ["r0"]
    assert widget.aggregated is not first  # another view: computed afresh
