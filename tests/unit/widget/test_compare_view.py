"""The Explorer's Compare view: its `compare` request, settings, cache, forest plot, exports."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from traitlets import TraitError
from widget_helpers import ask, read, read_recipe_bytes

import rungroup as rg
from rungroup.chart import ORDER_FIELD
from rungroup.compare_chart import (
    BASELINE_MARK,
    ESTIMATE_TABLE,
    INTERVAL_MARK,
    LABEL_MARK,
    MAX_ROWS,
    POINT_MARK,
    ROW_FIELD,
    forest_chart,
)
from rungroup.engine.recipe import attach_recipe, recipe_extra
from rungroup.engine.scores import REDUCTION_TABLE, REDUCTIONS
from rungroup.export import read_recipe
from rungroup.view import View
from rungroup.widget import Explorer
from rungroup.widget import compare as compare_module

SVG = "{http://www.w3.org/2000/svg}"
#: The reply's columns that are `rungroup.compare` columns under the same name.
SAME_NAME = ("n", "runs", "diff", "diff_low", "diff_high", "prob_improvement", "p_holm")


def expected(widget: Explorer, **settings: Any) -> pl.DataFrame:
    """`rungroup.compare` computed directly on the widget's shown runs and View."""
    return rg.compare(widget.filtered_runs, widget.view, **settings)


def rows_of(widget: Explorer) -> tuple[dict[str, Any], pl.DataFrame]:
    reply, buffers = ask(widget, "compare")
    assert reply["ok"], reply.get("error")
    return reply, read(buffers[0])


def test_reply_rows_equal_rungroup_compare_with_the_first_group_as_baseline(
    widget: Explorer,
) -> None:
    widget.group_by = ["config.seed"]
    reply, rows = rows_of(widget)
    # the first metric of the runs, the first group as the baseline
    assert reply["metric"] == widget.runs.metrics[0] == "acc"
    assert reply["baseline"] == "0" == reply["groups"][0]
    truth = expected(widget, metric="acc", baseline="0")
    assert rows["series"].to_list() == truth["series"].to_list() == ["0", "1", "2"]
    assert_frame_equal(rows.select(SAME_NAME), truth.select(SAME_NAME))
    assert rows["estimate"].to_list() == truth["mean"].to_list()
    assert rows["low"].to_list() == truth["mean_low"].to_list()
    assert rows["high"].to_list() == truth["mean_high"].to_list()
    assert rows["is_baseline"].to_list() == [True, False, False]
    assert_frame_equal(widget.compared, truth)  # what Python reads back is the same frame
    assert reply["higher_is_better"] is True and reply["direction_guessed"] is True


def test_metric_reduction_baseline_estimate_and_direction_are_the_engines(
    widget: Explorer,
) -> None:
    widget.group_by = ["config.seed"]
    widget.compare = {
        "metric": "loss",
        "reduce": "mean_last",
        "k": 3,
        "at": 12,
        "baseline": "1",
        "estimate": "iqm",
        "higher_is_better": True,  # flipped: "loss" is guessed lower-is-better
    }
    reply, rows = rows_of(widget)
    truth = expected(
        widget, metric="loss", reduce="mean_last", k=3, at=12, baseline="1", higher_is_better=True
    )
    assert reply["baseline"] == "1" and reply["higher_is_better"] is True
    assert reply["direction_guessed"] is False
    assert_frame_equal(rows.select(SAME_NAME), truth.select(SAME_NAME))
    assert rows["estimate"].to_list() == truth["iqm"].to_list()
    assert rows["low"].to_list() == truth["iqm_low"].to_list()
    # the direction matters: the probability of improvement is the complement's
    guessed = expected(widget, metric="loss", reduce="mean_last", k=3, at=12, baseline="1")
    flipped = [1 - p for p in guessed["prob_improvement"].drop_nulls().to_list()]
    assert rows["prob_improvement"].drop_nulls().to_list() == pytest.approx(flipped)
    labels = {c["name"]: c["label"] for c in reply["columns"]}
    assert labels["estimate"] == ESTIMATE_TABLE["iqm"].label


def test_the_view_follows_grouping_filter_and_hidden_runs(widget: Explorer) -> None:
    widget.group_by = ["config.lr"]
    _, rows = rows_of(widget)
    assert rows["series"].to_list() == ["0.01", "0.1"] and rows["n"].to_list() == [3, 3]
    widget.hidden = ["r0"]
    _, rows = rows_of(widget)
    assert rows["n"].to_list() == [3, 2]
    assert_frame_equal(
        rows.select(SAME_NAME), expected(widget, metric="acc", baseline="0.01").select(SAME_NAME)
    )
    # hiding a whole group leaves it out; the baseline it was falls back to the first group
    widget.compare = {"baseline": "0.1"}
    widget.hidden = ["r0", "r1", "r2"]
    reply, rows = rows_of(widget)
    assert rows["series"].to_list() == ["0.01"] and reply["baseline"] == "0.01"
    widget.hidden = []
    widget.search = "b"  # runs b0, b1, b2 (names contain b)
    _, rows = rows_of(widget)
    assert rows["series"].to_list() == ["0.01"]
    widget.search = ""
    widget.grouping = False
    _, rows = rows_of(widget)
    assert rows.height == 6  # every run its own group


def test_sorting_by_a_column(widget: Explorer) -> None:
    widget.group_by = ["config.seed"]
    widget.compare = {"sort": ["estimate", "desc"]}
    _, rows = rows_of(widget)
    assert rows["estimate"].to_list() == sorted(rows["estimate"].to_list(), reverse=True)
    widget.compare = {"sort": ["p_holm", "asc"]}
    _, rows = rows_of(widget)
    assert rows["p_holm"].to_list()[-1] is None  # the baseline has none: last
    assert rows["series"].to_list()[-1] == "0"


def test_forest_plot_spec_marks_the_baseline_and_uses_the_charts_colours(
    widget: Explorer,
) -> None:
    widget.group_by = ["config.seed"]
    widget.compare = {"baseline": "2"}
    _, buffers = ask(widget, "data")
    chart_order = (
        read(buffers[0]).select("series", ORDER_FIELD).unique().sort(ORDER_FIELD)["series"]
    )
    reply, rows = rows_of(widget)
    spec = reply["spec"]
    assert spec["data"] == {"name": reply["data_name"], "format": {"parse": None}}
    layers = {layer["name"]: layer for layer in spec["layer"]}
    assert set(layers) >= {INTERVAL_MARK, POINT_MARK, BASELINE_MARK}
    assert "is_baseline" in json.dumps(layers[BASELINE_MARK]["transform"])
    shape = layers[POINT_MARK]["encoding"]["shape"]
    assert shape["condition"] == {"test": "datum.is_baseline", "value": "diamond"}
    # one colour scale domain, in the charts' colour order: the same colours as the lines
    for layer in spec["layer"]:
        assert layer["encoding"]["color"]["scale"]["domain"] == chart_order.to_list()
    # the interval spans low..high
    assert layers[INTERVAL_MARK]["encoding"]["x"]["field"] == "low"
    assert layers[INTERVAL_MARK]["encoding"]["x2"]["field"] == "high"
    assert rows.filter("is_baseline")["series"].to_list() == ["2"]


def drawn_marks(svg: str) -> dict[str, list[ET.Element]]:
    """The items of each named mark of an SVG rendering, by mark name."""
    marks: dict[str, list[ET.Element]] = {}
    for group in ET.fromstring(svg).iter(f"{SVG}g"):
        for name in group.get("class", "").split():
            if name.endswith("_marks"):
                marks[name.removesuffix("_marks")] = list(group)
    return marks


def x_of(item: ET.Element) -> float:
    return float(item.get("transform", "").split("(")[1].split(",")[0])


def test_forest_chart_draws_one_interval_per_group_and_marks_the_baseline(
    runs: rg.Runs,
) -> None:
    vl_convert = pytest.importorskip("vl_convert")
    compared = rg.compare(runs, group_by="config.seed", metric="loss", baseline="1")
    spec = forest_chart(compared, "median").to_dict()
    (values,) = spec["datasets"].values()
    assert [v["series"] for v in values] == ["0", "1", "2"]
    assert [v["estimate"] for v in values] == compared["median"].to_list()
    assert "lower is better" in json.dumps(spec)  # "loss": the guessed direction is shown
    marks = drawn_marks(vl_convert.vegalite_to_svg(spec))
    assert len(marks[INTERVAL_MARK]) == len(marks[POINT_MARK]) == 3
    assert len(marks[BASELINE_MARK]) == len(marks[LABEL_MARK]) == 1
    # the dashed rule stands at the baseline's estimate, in the baseline's colour
    (rule,) = marks[BASELINE_MARK]
    base_point = marks[POINT_MARK][1]
    assert x_of(rule) == pytest.approx(x_of(base_point))
    assert rule.get("stroke") == base_point.get("fill")
    # the groups' colours are the charts' (one scale, one domain order)
    colours = [p.get("fill") for p in marks[POINT_MARK]]
    assert len(set(colours)) == 3
    with pytest.raises(ValueError, match=r"rungroup\.compare"):
        forest_chart(pl.DataFrame({"series": ["a"]}))


def y_of(item: ET.Element) -> float:
    return float(item.get("transform", "").split(",")[1].rstrip(")"))


def test_forest_chart_lists_the_groups_in_the_frames_order(runs: rg.Runs) -> None:
    vl_convert = pytest.importorskip("vl_convert")
    # seed 0 keeps one run: no interval, so its interval layer leaves it out
    compared = rg.compare(runs, group_by="config.seed", metric="acc", hidden=["r0"])
    for descending in (False, True):
        ordered = compared.sort("mean", descending=descending)
        attach_recipe(ordered, View(), recipe_extra(compared))
        marks = drawn_marks(vl_convert.vegalite_to_svg(forest_chart(ordered).to_dict()))
        assert len(marks[INTERVAL_MARK]) == 2
        top_down = sorted(marks[POINT_MARK], key=y_of)
        colours = {p.get("fill") for p in top_down}
        assert len(colours) == 3
        means = ordered["mean"].to_list()
        drawn_means = [x_of(p) for p in top_down]  # x grows with the mean
        assert sorted(drawn_means, reverse=descending) == drawn_means
        assert means == sorted(means, reverse=descending)


def test_widget_rows_carry_the_tables_order(widget: Explorer) -> None:
    widget.group_by = ["config.seed"]
    widget.compare = {"sort": ["estimate", "desc"]}
    _, rows = rows_of(widget)
    assert rows[ROW_FIELD].to_list() == [0, 1, 2]
    assert rows["estimate"].to_list() == sorted(rows["estimate"].to_list(), reverse=True)


def test_forest_chart_keeps_its_height_for_many_groups(runs: rg.Runs) -> None:
    few = forest_chart(rg.compare(runs, group_by="config.seed", metric="acc")).to_dict()
    assert few["height"] == {"step": 26}
    ungrouped = rg.compare(runs, grouping=False, metric="acc")
    assert forest_chart(ungrouped).to_dict()["height"] == {"step": 26}
    many = pl.concat([ungrouped] * 8).with_columns(
        pl.format("{}-{}", pl.col("series"), pl.int_range(pl.len())).alias("series")
    )
    attach_recipe(many, View(), recipe_extra(ungrouped))
    assert forest_chart(many).to_dict()["height"] == MAX_ROWS * 26


def test_exports_of_the_compare_frame(widget: Explorer) -> None:
    widget.group_by = ["config.seed"]
    widget.compare = {"metric": "loss", "reduce": "best"}
    reply, buffers = ask(widget, "export", what="compare_csv")
    assert reply["ok"] and reply["filename"] == "runs_loss_by-seed_compare.csv"
    written = pl.read_csv(io.BytesIO(buffers[0]))
    truth = expected(widget, metric="loss", reduce="best", baseline="0")
    assert written["mean"].to_list() == pytest.approx(truth["mean"].to_list())
    assert written["p_holm"].to_list()[1:] == pytest.approx(truth["p_holm"].to_list()[1:])
    reply, buffers = ask(widget, "export", what="compare_parquet")
    recipe = json.loads(read_recipe_bytes(buffers[0]))
    assert recipe["rungroup_compare"]["reduce"] == "best"
    assert recipe["rungroup_compare"]["baseline"] == "0"
    assert recipe["rungroup_compare"]["correction"] == "holm"
    assert recipe["rungroup_view"]["group_by"] == ["config.seed"]
    reply, buffers = ask(widget, "export", what="compare_recipe")
    assert json.loads(buffers[0])["rungroup_compare"]["metric"] == "loss"
    assert pl.read_parquet(io.BytesIO(ask(widget, "export", what="compare_parquet")[1][0])).height


def test_export_from_python(widget: Explorer, tmp_path: Any) -> None:
    widget.group_by = ["config.lr"]
    path = widget.export(tmp_path / "cmp.parquet", "compare")
    assert_frame_equal(pl.read_parquet(path), widget.compared)
    assert read_recipe(path)["rungroup_compare"]["metric"] == "acc"
    with pytest.raises(ValueError, match="aggregated, summary, compare"):
        widget.export(tmp_path / "x.csv", "nothing")


def test_invalid_settings_name_the_valid_choices(widget: Explorer) -> None:
    with pytest.raises(TraitError, match="last, best, mean_last, auc"):
        widget.compare = {"reduce": "median"}
    with pytest.raises(TraitError, match="valid keys: metric"):
        widget.compare = {"metrc": "loss"}
    with pytest.raises(TraitError, match="charts, compare"):
        widget.panel = "tables"
    with pytest.raises(TraitError, match="positive integer"):
        widget.compare = {"k": 0}
    # from the browser: shown in the widget and undone
    widget.set_state({"compare": {"estimate": "mode"}})
    assert "mean, mean_boot, median, iqm" in widget.error
    assert widget.compare["estimate"] == "mean"
    # a metric the runs do not have: the request is answered with the engine's message
    widget.compare = {"metric": "nope"}
    reply, _ = ask(widget, "compare")
    assert not reply["ok"] and "nope" in reply["error"]
    assert Explorer(widget.runs, panel="compare").panel == "compare"


def test_info_carries_the_choices_from_python(widget: Explorer) -> None:
    about = widget.info["compare"]
    assert [c["value"] for c in about["reductions"]] == list(REDUCTIONS)
    assert about["reductions"][2] == REDUCTION_TABLE["mean_last"].as_dict()
    assert [c["value"] for c in about["estimates"]] == list(ESTIMATE_TABLE)
    assert about["defaults"] == compare_module.DEFAULTS
    assert [c["value"] for c in about["panels"]] == ["charts", "compare"]
    assert about["fields"] == ["panel", "compare"]


def test_the_session_keeps_comparisons_until_the_runs_change(
    widget: Explorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    compute = compare_module.compute

    def counted(*args: Any, **kwargs: Any) -> compare_module.Compared:
        made.append("x")
        return compute(*args, **kwargs)

    monkeypatch.setattr(compare_module, "compute", counted)
    rows_of(widget)
    rows_of(widget)
    assert len(made) == 1
    widget.compare = {"reduce": "auc"}
    rows_of(widget)
    widget.compare = {}
    rows_of(widget)  # back to a comparison shown a moment ago
    assert len(made) == 2
    widget.runs = widget.runs  # replaced (as a live poll does)
    rows_of(widget)
    assert len(made) == 3
