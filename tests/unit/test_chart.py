"""chart() and widget_spec(): band + line per series from the aggregate frame only, one panel
per metric; the widget's spec built for a browser that feeds it Arrow rows."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest
from test_engine_grouping import sample

import rungroup as rg
from rungroup.chart import (
    BAND_PARAM,
    COLOUR_FIELD,
    DATA_NAME,
    ISOLATED_PARAM,
    ORDER_FIELD,
    widget_spec,
)


def units(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [layer for panel in spec["concat"] for layer in panel["layer"]]


def marks(spec: dict[str, Any]) -> list[str]:
    return [u["mark"]["type"] for u in units(spec)]


def test_band_and_line_per_series_in_one_colour_one_panel_per_metric():
    frame = rg.aggregate(sample(), band="minmax")
    spec = rg.chart(frame).to_dict()
    assert [p["title"] for p in spec["concat"]] == ["acc", "loss"]
    assert marks(spec) == ["area", "line", "circle"] * 2
    area, line, hover = units(spec)[:3]
    assert area["encoding"]["y"]["field"] == "lower"
    assert area["encoding"]["y2"]["field"] == "upper"
    assert area["mark"]["opacity"] <= 0.3
    assert line["encoding"]["y"]["field"] == "line"
    assert area["encoding"]["color"]["field"] == line["encoding"]["color"]["field"] == "series"
    assert [t["field"] for t in hover["encoding"]["tooltip"]] == [
        "series",
        "x",
        "line",
        "lower",
        "upper",
        "n",
    ]
    assert [u["transform"] for u in units(spec)[:3]] == [
        [{"filter": {"field": "metric", "equal": "acc"}}]
    ] * 3


def test_data_is_one_named_inline_dataset_of_exactly_the_frame():
    frame = rg.aggregate(sample(), metrics="loss")
    spec = rg.chart(frame).to_dict()
    assert spec["data"]["name"] == DATA_NAME
    rows = spec["data"]["values"]
    assert rows == frame.select("series", "metric", "x", "line", "lower", "upper", "n").to_dicts()
    assert all("data" not in panel for panel in spec["concat"])
    empty = rg.chart(frame, inline=False).to_dict()
    assert empty["data"] == {"name": DATA_NAME, "values": []}


def test_legend_click_isolates_a_series():
    spec = rg.chart(rg.aggregate(sample())).to_dict()
    params = spec["params"]
    assert len(params) == 1
    assert params[0]["select"] == {"type": "point", "fields": ["series"]}
    assert params[0]["bind"] == "legend"
    line = units(spec)[1]
    assert line["encoding"]["opacity"]["condition"]["param"] == params[0]["name"]


def test_titles_come_from_the_data_and_the_recipe():
    frame = rg.aggregate(sample(), metrics="loss", band="ci")
    panel = rg.chart(frame).to_dict()["concat"][0]
    assert panel["title"] == "loss"
    line = panel["layer"][1]
    assert line["encoding"]["x"]["title"] == "step"
    assert line["encoding"]["y"]["title"] == "loss (mean, band: 95% CI (t))"
    derived = frame.filter(pl.col("n") > 0)  # no recipe: plain titles
    line = rg.chart(derived).to_dict()["concat"][0]["layer"][1]
    assert (line["encoding"]["x"]["title"], line["encoding"]["y"]["title"]) == ("x", "loss")


@pytest.mark.parametrize(
    ("fields", "title"),
    [
        ({"band": "none", "line": "median"}, "loss (median)"),
        ({"band": "minmax"}, "loss (mean, band: min–max)"),
        ({"band": "std", "line": "iqm"}, "loss (iqm, band: mean ± std)"),
        ({"band": "stderr"}, "loss (mean, band: mean ± stderr)"),
        (
            {"band": "ci", "ci_level": 0.9, "ci_method": "bootstrap"},
            "loss (mean, band: 90% CI (bootstrap))",
        ),
        ({"band": "quantile", "quantiles": (0.1, 0.9)}, "loss (mean, band: q0.1–q0.9)"),
        ({"band": "ci", "grouping": False}, "loss"),
    ],
)
def test_every_band_is_named_in_the_y_title(fields: dict[str, Any], title: str) -> None:
    frame = rg.aggregate(sample(), metrics="loss", bootstrap_samples=20, **fields)
    for layer in rg.chart(frame).to_dict()["concat"][0]["layer"]:
        assert layer["encoding"]["y"]["title"] == title


def test_log_y_from_the_view_or_the_argument():
    frame = rg.aggregate(sample(), log_y=True)
    assert units(rg.chart(frame).to_dict())[1]["encoding"]["y"]["scale"]["type"] == "log"
    plain = rg.aggregate(sample())
    assert "type" not in units(rg.chart(plain).to_dict())[1]["encoding"]["y"]["scale"]
    forced = units(rg.chart(plain, log_y=True).to_dict())[1]
    assert forced["encoding"]["y"]["scale"]["type"] == "log"


def test_grouping_off_draws_one_line_per_run():
    frame = rg.aggregate(sample(), grouping=False, metrics="loss")
    spec = rg.chart(frame).to_dict()
    assert marks(spec) == ["line", "circle"]
    assert {row["series"] for row in spec["data"]["values"]} == {
        "alpha (a)",
        "beta",
        "gamma",
        "alpha (d)",
    }


def test_timestamps_are_temporal():
    history = pl.DataFrame(
        {
            "run_id": ["a", "a"],
            "metric": ["m", "m"],
            "step": [0, 1],
            "timestamp": [0, 1_000_000],
            "value": [1.0, 2.0],
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))
    runs = rg.Runs(pl.DataFrame({"id": ["a"]}), history)
    spec = rg.chart(rg.aggregate(runs, x="timestamp")).to_dict()
    assert units(spec)[1]["encoding"]["x"]["type"] == "temporal"


def test_bad_input():
    with pytest.raises(ValueError, match="missing: series"):
        rg.chart(pl.DataFrame({"x": [1.0]}))
    with pytest.raises(TypeError, match="Polars DataFrame"):
        rg.chart([1, 2])  # type: ignore[arg-type]


def test_empty_frame_still_makes_a_chart():
    frame = rg.aggregate(sample(), hidden={"a", "b", "c", "d"})
    spec = rg.chart(frame).to_dict()
    assert spec["data"]["values"] == []


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_saves_png_and_svg_through_vl_convert(tmp_path, suffix):
    path = tmp_path / f"chart.{suffix}"
    rg.chart(rg.aggregate(sample())).save(str(path))
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == "png" else b"<svg" in data[:200]


# --- the widget's spec


def _facet_keys(vega: Any) -> list[list[str]]:
    """The fields each faceted mark of a compiled Vega spec is split by."""
    found: list[list[str]] = []
    if isinstance(vega, dict):
        facet = vega.get("from", {}).get("facet") if isinstance(vega.get("from"), dict) else None
        if facet:
            found.append(facet["groupby"])
        for value in vega.values():
            found.extend(_facet_keys(value))
    elif isinstance(vega, list):
        for value in vega:
            found.extend(_facet_keys(value))
    return found


def _compiled(spec: dict[str, Any]) -> Any:
    import vl_convert

    vega = vl_convert.vegalite_to_vega(spec)
    return json.loads(vega) if isinstance(vega, str) else vega


@pytest.mark.parametrize("group_page", [False, True])
def test_widget_spec_splits_lines_and_bands_by_colour_order(group_page: bool) -> None:
    """Lines and bands are split by `rg_order` (and a group page's run lines by run), never by
    the series label, and drawn in that order, as the browser's series canvas draws them;
    their colour is the row's ``rg_colour``."""
    frame = rg.aggregate(sample(), band="minmax")
    view = rg.View(band="minmax")
    if group_page:
        runs = rg.aggregate(sample(), grouping=False).with_columns(
            pl.col("series").alias("run"), pl.lit("g").alias("series"), pl.lit("run").alias("layer")
        )
        frame = pl.concat([frame.with_columns(layer=pl.lit("group")), runs], how="diagonal_relaxed")
    frame = frame.with_columns(rg_colour=pl.lit("#0072b2"), rg_part=pl.lit(1, dtype=pl.Int8))
    built = widget_spec(frame, view, group_page=group_page)
    paths = [u for u in units(built.spec) if u["mark"]["type"] in ("line", "area")]
    # the colour is the row's own (the group's stable colour), by expression: not a field
    # that would split the paths
    colour = {"value": {"expr": f"datum.{COLOUR_FIELD}"}}
    assert paths and all(u["encoding"]["color"] == colour for u in paths)
    assert {u["encoding"]["detail"]["field"] for u in paths} == (
        {ORDER_FIELD, "run"} if group_page else {ORDER_FIELD}
    )
    keys = _facet_keys(_compiled(built.spec))
    assert keys and all("series" not in k and COLOUR_FIELD not in k for k in keys)
    assert ORDER_FIELD in built.fields and ("layer" in built.fields) == group_page


def test_widget_spec_datasets_cover_every_unit_and_carry_no_rows() -> None:
    frame = rg.aggregate(sample())
    spec = widget_spec(frame, rg.View()).spec
    listed = {d["name"] for d in spec["usermeta"]["rungroup"]["datasets"]}
    assert "values" not in json.dumps(spec) and "data" not in spec
    assert {panel["data"]["name"] for panel in spec["concat"]} == listed
    # the browser's parameters: isolated series (its HTML legend), band opacity; the hovered
    # series is drawn by the browser over the view (js/src/chart/emphasis.ts), not by Vega
    assert [p["name"] for p in spec["params"]] == [ISOLATED_PARAM, BAND_PARAM]
    # no legend in Vega: the browser draws it from the reply's entries
    assert all("legend" not in json.dumps(u["encoding"].get("color", {})) for u in units(spec))


def test_widget_spec_does_not_depend_on_which_runs_form_the_series() -> None:
    by_group = rg.aggregate(sample())
    by_lr = rg.aggregate(sample(), group_by="config.lr")
    assert by_group["series"].to_list() != by_lr["series"].to_list()
    view = rg.View()
    assert widget_spec(by_group, view).key == widget_spec(by_lr, view.replace(group_by=("x",))).key
    assert widget_spec(by_group, view).key != widget_spec(by_group, view.replace(band="ci")).key
