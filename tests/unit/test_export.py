"""export() and load_recipe(): the recipe reproduces the frame exactly."""

from __future__ import annotations

import json

import polars as pl
import pytest
from test_engine_grouping import sample
from test_stats import demo_like_runs

import rungroup as rg
from rungroup.export import read_recipe

VIEWS = [
    {"band": "ci", "line": "median", "metrics": ("loss",)},
    {"grouping": False, "smoothing": "ema", "smoothing_param": 0.8},
    {"group_by": ("tags",), "align": "bucket", "points": 2, "hidden": {"b"}},
    {"ci_method": "bootstrap", "band": "ci", "bootstrap_samples": 300, "seed": 5},
    {"group_by": ("config.seed",), "reverse": True, "band": "quantile", "quantiles": (0.1, 0.9)},
]


@pytest.mark.parametrize("fields", VIEWS)
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_recipe_reproduces_the_frame_exactly(tmp_path, fields, suffix):
    runs = sample()
    frame = rg.aggregate(runs, **fields)
    path = rg.export(frame, tmp_path / f"curves.{suffix}")
    view = rg.load_recipe(path)
    assert view == rg.recipe_of(frame)
    assert rg.aggregate(runs, view).equals(frame)
    if suffix == "parquet":
        assert pl.read_parquet(path).equals(frame)
    else:
        assert pl.read_csv(path, schema=frame.schema).equals(frame)
        assert (tmp_path / "curves.csv.recipe.json").exists()


def test_recipe_says_what_the_drawn_columns_are(tmp_path):
    frame = rg.aggregate(demo_like_runs(), line="median", band="std")
    recipe = read_recipe(rg.export(frame, tmp_path / "a.parquet"))
    assert recipe["columns"] == {"line": "median", "lower": "mean - std", "upper": "mean + std"}
    assert recipe["rungroup_version"] == rg.__version__
    sidecar = rg.export(frame, tmp_path / "a.csv").with_name("a.csv.recipe.json")
    assert json.loads(sidecar.read_text())["rungroup_view"]["line"] == "median"
    assert rg.load_recipe(sidecar) == rg.recipe_of(frame)


@pytest.mark.parametrize(
    ("band", "lower", "upper"),
    [
        ("none", "max", "max"),
        ("minmax", "min", "max"),
        ("std", "mean - std", "mean + std"),
        ("stderr", "mean - stderr", "mean + stderr"),
        ("ci", "ci_low", "ci_high"),
        ("quantile", "q_low", "q_high"),
    ],
)
def test_every_band_is_written_into_the_recipe(tmp_path, band, lower, upper):
    frame = rg.aggregate(demo_like_runs(), line="max", band=band, bootstrap_samples=20)
    recipe = read_recipe(rg.export(frame, tmp_path / "a.csv"))
    assert recipe["columns"] == {"line": "max", "lower": lower, "upper": upper}
    # the formulas say what the columns hold
    for column, formula in (("lower", lower), ("upper", upper)):
        terms = formula.split(" ")
        expected = frame[terms[0]]
        if len(terms) == 3:
            sign = 1 if terms[1] == "+" else -1
            expected = expected + sign * frame[terms[2]]
        expected = expected.fill_null(frame["line"])
        assert (frame[column] - expected).abs().max() <= 1e-12


def test_derived_frames_need_the_view_explicitly(tmp_path):
    frame = rg.aggregate(sample())
    derived = frame.filter(pl.col("n") > 1)
    with pytest.raises(ValueError, match="carries no recipe"):
        rg.export(derived, tmp_path / "d.csv")
    assert not (tmp_path / "d.csv").exists()
    view = rg.View(band="minmax")
    rg.export(derived, tmp_path / "d.csv", view=view, extra={"note": "n > 1"})
    assert rg.load_recipe(tmp_path / "d.csv") == view
    assert read_recipe(tmp_path / "d.csv")["note"] == "n > 1"


def test_summary_frames_export_too(tmp_path):
    table = rg.summarize(sample(), group_by="tags")
    path = rg.export(table, tmp_path / "groups.csv", view=rg.View(group_by=("tags",)))
    assert pl.read_csv(path).height == table.height


def test_named_file_is_overwritten_and_other_files_are_left_alone(tmp_path):
    (tmp_path / "other.txt").write_text("keep")
    target = tmp_path / "out.parquet"
    target.write_text("old")
    rg.export(rg.aggregate(sample()), target)
    assert pl.read_parquet(target).height > 0
    assert (tmp_path / "other.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt", "out.parquet"]


def test_bad_paths_and_missing_recipes(tmp_path):
    frame = rg.aggregate(sample())
    with pytest.raises(ValueError, match=r"must end in one of \.csv, \.parquet"):
        rg.export(frame, tmp_path / "out.xlsx")
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "plain.parquet")
    with pytest.raises(ValueError, match="no rungroup recipe"):
        rg.load_recipe(tmp_path / "plain.parquet")
    pl.DataFrame({"a": [1]}).write_csv(tmp_path / "plain.csv")
    with pytest.raises(FileNotFoundError, match=r"plain\.csv\.recipe\.json is missing"):
        rg.load_recipe(tmp_path / "plain.csv")
    with pytest.raises(ValueError, match=r"use a \.csv, \.parquet"):
        rg.load_recipe(tmp_path / "x.txt")
