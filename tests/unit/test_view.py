"""The View: defaults, validation, replace, dict round trip, resolve_view."""

from __future__ import annotations

import dataclasses
import json

import pytest
from engine_helpers import make_runs
from hypothesis import given, settings
from hypothesis import strategies as st

import rungroup as rg
from rungroup import view as view_module
from rungroup.runs import Runs
from rungroup.view import View, check_against_runs, resolve_view, setting_choices

DEFAULTS = {
    "metrics": (),
    "group_by": ("group",),
    "grouping": True,
    "reverse": False,
    "x": "step",
    "line": "mean",
    "band": "std",
    "quantiles": (0.25, 0.75),
    "ci_level": 0.95,
    "ci_method": "t",
    "bootstrap_samples": 2000,
    "seed": 0,
    "align": "auto",
    "points": 1500,
    "min_runs": 1,
    "smoothing": "none",
    "smoothing_param": 0.6,
    "smooth_order": "before",
    "log_y": False,
    "hidden": frozenset(),
}


def test_defaults_are_design_md():
    view = View()
    assert {f.name: getattr(view, f.name) for f in dataclasses.fields(view)} == DEFAULTS


def test_frozen_and_hashable():
    view = View()
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.line = "max"  # type: ignore[misc]
    assert hash(view) == hash(View())
    assert {View(), View()} == {View()}


def test_names_are_normalised():
    view = View(metrics="loss", group_by=["group", "config.lr", "group"], hidden=["b", "a"])
    assert view.metrics == ("loss",)
    assert view.group_by == ("group", "config.lr")
    assert view.hidden == frozenset({"a", "b"})
    assert View(quantiles=[0.1, 0.9]).quantiles == (0.1, 0.9)
    assert View(points=100.0).points == 100


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("line", "mode", "line='mode' is not valid; choose one of: mean, median, min, max, iqm"),
        ("band", "sd", "choose one of: none, minmax, std, stderr, ci, quantile"),
        ("align", "nearest", "choose one of: auto, exact, interpolate, bucket"),
        ("ci_method", "bca", "choose one of: t, bootstrap"),
        ("smoothing", "loess", "choose one of: none, ema, window, gaussian"),
        ("smooth_order", "during", "choose one of: before, after"),
        ("x", "", "choose one of: step, time, timestamp or a metric name"),
        ("quantiles", (0.8, 0.2), "0 <= lower <= upper <= 1"),
        ("quantiles", (0.1, 0.5, 0.9), "0 <= lower <= upper <= 1"),
        ("ci_level", 1.0, "strictly between 0 and 1"),
        ("points", 1, "at least 2"),
        ("min_runs", 0, "at least 1"),
        ("bootstrap_samples", 0, "at least 1"),
        ("points", 10.5, "whole number"),
        ("smoothing_param", float("nan"), "finite"),
        ("smoothing_param", -1.0, ">= 0"),
    ],
)
def test_invalid_values_name_the_valid_choices(field, value, message):
    with pytest.raises(ValueError) as error:
        View(**{field: value})
    assert message in str(error.value)


def test_smoothing_param_is_checked_for_its_smoothing():
    with pytest.raises(ValueError, match=r"weight in \[0, 0.999\]"):
        View(smoothing="ema", smoothing_param=1.0)
    with pytest.raises(ValueError, match="window length in points"):
        View(smoothing="window", smoothing_param=0.6)
    with pytest.raises(ValueError, match="sigma in x units"):
        View(smoothing="gaussian", smoothing_param=0.0)
    assert View(smoothing="window", smoothing_param=5).smoothing_param == 5.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("grouping", "yes"),
        ("log_y", 1),
        ("metrics", 3),
        ("group_by", [1]),
        ("hidden", "abc"),
        ("points", "9"),
    ],
)
def test_wrong_types_raise_type_error(field, value):
    with pytest.raises(TypeError):
        View(**{field: value})


def test_unknown_fields_list_the_valid_names():
    for call in (lambda: View().replace(colour="red"), lambda: resolve_view(colour="red")):
        with pytest.raises(TypeError) as error:
            call()
        assert "unknown View field(s) 'colour'" in str(error.value)
        assert "valid fields: metrics, group_by, grouping, reverse, x, line, band" in str(
            error.value
        )
    with pytest.raises(TypeError, match="valid fields"):
        View.from_dict({"line": "mean", "colour": "red"})


def test_replace_validates_and_keeps_the_rest():
    view = View(band="ci", metrics=("loss",))
    changed = view.replace(line="median")
    assert (changed.line, changed.band, changed.metrics) == ("median", "ci", ("loss",))
    assert view.line == "mean"
    with pytest.raises(ValueError, match="choose one of"):
        view.replace(band="sd")


def test_resolve_view_keywords_override_the_view():
    base = View(band="ci", line="median")
    assert resolve_view() == View()
    assert resolve_view(base) is base
    assert resolve_view(base, line="max") == View(band="ci", line="max")
    assert resolve_view(base.to_dict(), line="max") == View(band="ci", line="max")
    with pytest.raises(TypeError, match="view must be"):
        resolve_view("mean")  # type: ignore[arg-type]


views = st.builds(
    View,
    metrics=st.lists(st.text(min_size=1, max_size=8), max_size=3),
    group_by=st.lists(st.sampled_from(["group", "tags", "config.lr", "name"]), max_size=3),
    grouping=st.booleans(),
    reverse=st.booleans(),
    x=st.sampled_from(["step", "time", "timestamp", "epoch"]),
    line=st.sampled_from(["mean", "median", "min", "max", "iqm"]),
    band=st.sampled_from(["none", "minmax", "std", "stderr", "ci", "quantile"]),
    quantiles=st.tuples(st.floats(0, 0.5), st.floats(0.5, 1)),
    ci_level=st.floats(0.01, 0.99),
    ci_method=st.sampled_from(["t", "bootstrap"]),
    bootstrap_samples=st.integers(1, 10_000),
    seed=st.integers(0, 2**32),
    align=st.sampled_from(["auto", "exact", "interpolate", "bucket"]),
    points=st.integers(2, 10_000),
    min_runs=st.integers(1, 10),
    smoothing=st.just("ema"),
    smoothing_param=st.floats(0, 0.999),
    smooth_order=st.sampled_from(["before", "after"]),
    log_y=st.booleans(),
    hidden=st.frozensets(st.text(min_size=1, max_size=5), max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(views)
def test_dict_round_trip_is_json_safe_and_exact(view):
    data = view.to_dict()
    text = json.dumps(data)
    assert View.from_dict(json.loads(text)) == view
    assert isinstance(data["hidden"], list)
    assert data["hidden"] == sorted(data["hidden"])


def test_every_choice_field_offers_exactly_the_values_the_view_takes():
    choices = setting_choices()
    accepted = {
        "line": view_module.LINES,
        "band": view_module.BANDS,
        "ci_method": view_module.CI_METHODS,
        "align": view_module.ALIGNS,
        "smoothing": view_module.SMOOTHINGS,
        "smooth_order": view_module.SMOOTH_ORDERS,
    }
    assert list(choices) == [*accepted, "x"]
    assert [c["value"] for c in choices["x"]] == list(view_module.X_BUILTINS)
    for name, values in accepted.items():
        assert [c["value"] for c in choices[name]] == list(values)
        message = f"{name}='bogus' is not valid; choose one of: {', '.join(values)}"
        with pytest.raises(ValueError) as error:
            View(**{name: "bogus"})
        assert str(error.value) == message


def test_band_statistics_are_what_lower_and_upper_are_made_of():
    for name, band in view_module.BAND_TABLE.items():
        drawn = view_module.drawn_statistics(View(band=name, line="median"))
        formulas = (band.lower.formula, band.upper.formula)
        words = {w for f in formulas for w in f.split(" ") if w not in ("+", "-", "line")}
        assert drawn == {"median", *words}


def test_run_dependent_fields_are_checked_in_one_place_with_one_message():
    runs = make_runs([{"id": "a", "config.lr": 0.1}], [("a", "loss", 0, 1.0)])
    with pytest.raises(
        ValueError,
        match=r"unknown group_by column\(s\) 'lr'; valid columns: "
        r"project, group, job_type, name, state, tags, config\.lr$",
    ):
        check_against_runs(View(group_by="lr"), runs)
    with pytest.raises(ValueError, match=r"unknown metric\(s\) 'acc'; valid metrics: loss$"):
        check_against_runs(View(metrics="acc"), runs)
    with pytest.raises(
        ValueError,
        match=r"x=.epoch. is not valid; choose one of: step, time, timestamp or a metric: loss$",
    ):
        check_against_runs(View(x="epoch"), runs)
    check_against_runs(View(metrics="acc", group_by="lr"), runs, "x")  # only x is checked
    # the engine says the same thing
    with pytest.raises(ValueError, match=r"unknown group_by column\(s\) 'lr'"):
        rg.aggregate(runs, group_by="lr")
    # a live store that has not written yet takes names it may still log
    empty = Runs()
    check_against_runs(View(metrics="acc", x="epoch", group_by="lr"), empty, pending_ok=True)
    with pytest.raises(ValueError, match="unknown metric"):
        check_against_runs(View(metrics="acc"), empty)
