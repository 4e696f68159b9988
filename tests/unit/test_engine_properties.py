"""Properties of aggregate() that must hold for any runs (hypothesis)."""

from __future__ import annotations

import math

import polars as pl
from engine_helpers import make_runs, run_sets
from hypothesis import given, settings
from hypothesis import strategies as st

import rungroup as rg

ALIGNS = st.sampled_from(["exact", "interpolate", "bucket", "auto"])


@settings(max_examples=300, deadline=None)
@given(run_sets(duplicates=True), ALIGNS, st.randoms(use_true_random=False), st.booleans())
def test_results_do_not_depend_on_run_order(data, align, random, ci_bootstrap):
    runs, points = data
    shuffled_runs = list(runs)
    shuffled_points = list(points)
    random.shuffle(shuffled_runs)
    # points of one run keep their logged order (an EMA reads them in order)
    order = {r["id"]: i for i, r in enumerate(shuffled_runs)}
    shuffled_points.sort(key=lambda p: order[p[0]])
    fields = {"align": align, "points": 4, "ci_method": "bootstrap" if ci_bootstrap else "t"}
    a = rg.aggregate(make_runs(runs, points), **fields)
    b = rg.aggregate(make_runs(shuffled_runs, shuffled_points), **fields)
    assert a.equals(b)


@settings(max_examples=300, deadline=None)
@given(
    run_sets(),
    ALIGNS,
    st.sampled_from(["mean", "median", "min", "max", "iqm"]),
    st.sampled_from(["none", "minmax", "std", "stderr", "ci", "quantile"]),
)
def test_orderings_that_always_hold(data, align, line, band):
    runs, points = data
    frame = rg.aggregate(make_runs(runs, points), align=align, line=line, band=band)
    for row in frame.iter_rows(named=True):
        assert row["n"] >= 1
        assert row["min"] <= row["q_low"] <= row["median"] <= row["q_high"] <= row["max"]
        assert row["min"] <= row["mean"] <= row["max"]
        assert row["min"] <= row["iqm"] <= row["max"]
        if row["n"] >= 2:
            assert row["std"] >= 0
            assert row["ci_low"] <= row["mean"] <= row["ci_high"]
        # the band contains the line whenever it is the line's own kind of spread
        contains = (
            band in ("none", "minmax")
            or (band in ("std", "stderr", "ci") and line == "mean")
            or (band == "quantile" and line == "median")
        )
        if contains:
            assert row["lower"] <= row["line"] <= row["upper"]
        assert row["lower"] <= row["upper"] or band == "none"


@settings(max_examples=300, deadline=None)
@given(run_sets(duplicates=True), st.sampled_from(["exact", "auto", "interpolate"]))
def test_grouping_off_gives_each_runs_own_values(data, align):
    runs, points = data
    frame = rg.aggregate(make_runs(runs, points), grouping=False, align=align)
    per_run: dict[tuple[str, float], list[float]] = {}
    for run_id, _, step, value in points:
        per_run.setdefault((run_id, float(step)), []).append(value)
    expected = {
        key: sum(f for f in values if math.isfinite(f)) / sum(map(math.isfinite, values))
        for key, values in per_run.items()
        if any(map(math.isfinite, values))
    }
    got = {(row["run_id"], row["x"]): row for row in frame.iter_rows(named=True)}
    assert set(got) == set(expected)
    for key, value in expected.items():
        row = got[key]
        assert row["n"] == 1
        assert abs(row["line"] - value) <= 1e-12 * max(1, abs(value))
        assert row["lower"] == row["upper"] == row["line"]
        assert row["std"] is None
    names = {r["id"]: r["name"] for r in runs}
    for row in frame.iter_rows(named=True):
        assert row["series"] == names[row["run_id"]]


@settings(max_examples=200, deadline=None)
@given(run_sets(), ALIGNS, st.integers(1, 4))
def test_n_counts_contributing_runs_and_min_runs_filters(data, align, min_runs):
    runs, points = data
    made = make_runs(runs, points)
    everything = rg.aggregate(made, align=align, points=5)
    thick = rg.aggregate(made, align=align, points=5, min_runs=min_runs)
    assert thick.equals(everything.filter(pl.col("n") >= min_runs))
    sizes = {}
    for run in runs:
        sizes[run["group"]] = sizes.get(run["group"], 0) + 1
    for row in everything.iter_rows(named=True):
        assert 1 <= row["n"] <= sizes[row["series"]]


@settings(max_examples=150, deadline=None)
@given(run_sets(), st.sampled_from(["exact", "interpolate", "bucket"]))
def test_hidden_runs_are_left_out_of_everything(data, align):
    runs, points = data
    made = make_runs(runs, points)
    hidden = {runs[0]["id"]}
    kept = [r for r in runs if r["id"] not in hidden]
    kept_points = [p for p in points if p[0] not in hidden]
    got = rg.aggregate(made, align=align, hidden=hidden, points=4)
    if not kept:
        assert got.height == 0
        return
    # (bucket bins span the x range of the runs that are shown)
    expected = rg.aggregate(make_runs(kept, kept_points), align=align, points=4)
    assert got.equals(expected)
