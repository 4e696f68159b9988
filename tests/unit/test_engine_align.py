"""Alignment and statistics against hand-written numpy/scipy references (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from engine_helpers import (
    assert_same_frames,
    close,
    make_runs,
    reference_bucket,
    reference_exact,
    reference_interpolate,
    reference_stats,
    rows_by_point,
    run_sets,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import rungroup as rg

STATS = (
    "mean",
    "median",
    "min",
    "max",
    "std",
    "stderr",
    "ci_low",
    "ci_high",
    "q_low",
    "q_high",
    "iqm",
)


def most_points_per_series(frame: pl.DataFrame) -> int:
    counts = frame.group_by("series").len()["len"]
    return int(counts.max()) if counts.len() else 0  # type: ignore[arg-type]


def check_against(frame: pl.DataFrame, expected: dict) -> None:
    rows = rows_by_point(frame)
    # every point with at least one contributing run is in the frame, and nothing else
    wanted = {key: value for key, value in expected.items() if value[0]}
    assert set(rows) == set(wanted), (sorted(rows), sorted(wanted))
    for key, (values, dropped) in wanted.items():
        row = rows[key]
        ref = reference_stats(values)
        assert row["n"] == ref["n"] == len(values)
        assert row["dropped"] == dropped
        scale = max(abs(v) for v in values)
        for name in STATS:
            assert close(row[name], ref[name], scale), (name, row[name], ref[name], values)


@settings(max_examples=300, deadline=None)
@given(run_sets(duplicates=True))
def test_exact_matches_numpy_reference(data):
    runs, points = data
    frame = rg.aggregate(make_runs(runs, points), align="exact")
    check_against(frame, reference_exact(runs, points))


@settings(max_examples=300, deadline=None)
@given(run_sets(duplicates=True))
def test_interpolate_matches_numpy_reference(data):
    runs, points = data
    frame = rg.aggregate(make_runs(runs, points), align="interpolate")
    check_against(frame, reference_interpolate(runs, points))


@settings(max_examples=300, deadline=None)
@given(run_sets(duplicates=True), st.integers(2, 7))
def test_bucket_matches_numpy_reference(data, bins):
    runs, points = data
    frame = rg.aggregate(make_runs(runs, points), align="bucket", points=bins)
    check_against(frame, reference_bucket(runs, points, bins))
    assert most_points_per_series(frame) <= bins


@settings(max_examples=300, deadline=None)
@given(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(1e-3, 1e6, allow_nan=False),  # numpy refuses bins narrower than the ulps
    st.integers(1, 40),
    st.integers(1, 3),
)
def test_bins_are_numpy_histogram_s_even_on_edges(lo, span, bins, metrics):
    """x on every edge numpy.histogram computes (where the arithmetic alone is a bin off)
    and between them, for one and several metrics with their own ranges."""
    from rungroup.engine.align import bin_index

    his = [lo + span * (k + 1) for k in range(metrics)]
    xs, ms = [], []
    for k, hi in enumerate(his):
        edges = np.linspace(lo, hi, bins + 1)
        inside = np.concatenate((edges, (edges[:-1] + edges[1:]) / 2, np.nextafter(edges, hi)))
        inside = inside[(inside >= lo) & (inside <= hi)]
        xs.append(inside)
        ms.append(np.full(inside.size, k))
    x, m = np.concatenate(xs), np.concatenate(ms)
    got = bin_index(x, m if metrics > 1 else None, np.full(metrics, lo), np.array(his), bins)
    for k, hi in enumerate(his):
        chosen = got[m == k]
        counts = np.bincount(chosen, minlength=bins)
        np.testing.assert_array_equal(counts, np.histogram(x[m == k], bins, (lo, hi))[0])


def test_a_step_on_an_unrepresentable_edge_lands_where_numpy_puts_it():
    from rungroup.engine.align import bin_index

    steps = np.arange(19.0)  # 0..18 in 14 bins: step 9 is on the edge 9.0 (7 x 18/14)
    got = bin_index(steps, None, np.array([0.0]), np.array([18.0]), 14)
    assert got[9] == 7
    np.testing.assert_array_equal(np.bincount(got), np.histogram(steps, 14, (0, 18))[0])


@settings(max_examples=200, deadline=None)
@given(run_sets(max_steps=30), st.integers(2, 6), st.sampled_from(["exact", "interpolate"]))
def test_points_cap_keeps_evenly_spread_real_x(data, cap, align):
    runs, points = data
    frame = rg.aggregate(make_runs(runs, points), align=align, points=cap)
    reference = (reference_exact if align == "exact" else reference_interpolate)(
        runs, points, points_cap=cap
    )
    check_against(frame, reference)
    assert most_points_per_series(frame) <= cap


@settings(max_examples=200, deadline=None)
@given(run_sets(shared_steps=True))
def test_auto_is_exact_when_runs_share_steps(data):
    runs, points = data
    made = make_runs(runs, points)
    auto = rg.aggregate(made, align="auto")
    assert auto.equals(rg.aggregate(made, align="exact"))


@settings(max_examples=200, deadline=None)
@given(run_sets())
def test_auto_picks_per_series(data):
    runs, points = data
    made = make_runs(runs, points)
    auto = rg.aggregate(made, align="auto")
    exact = rg.aggregate(made, align="exact")
    interpolated = rg.aggregate(made, align="interpolate")
    steps: dict[str, dict[str, set]] = {}
    for run in runs:
        steps.setdefault(run["group"], {})[run["id"]] = {p[2] for p in points if p[0] == run["id"]}
    for group, per_run in steps.items():
        shared = len({frozenset(s) for s in per_run.values()}) == 1
        expected = (exact if shared else interpolated).filter(pl.col("series") == group)
        assert_same_frames(auto.filter(pl.col("series") == group), expected)


@settings(max_examples=200, deadline=None)
@given(run_sets(non_finite=False))
def test_interpolation_counts_each_run_once_per_x(data):
    runs, points = data
    frame = rg.aggregate(make_runs(runs, points), align="interpolate")
    spans = {}
    for run_id, _, step, _ in points:
        lo, hi = spans.get(run_id, (step, step))
        spans[run_id] = (min(lo, step), max(hi, step))
    for row in frame.iter_rows(named=True):
        inside = [
            r["id"]
            for r in runs
            if r["group"] == row["series"] and spans[r["id"]][0] <= row["x"] <= spans[r["id"]][1]
        ]
        assert row["n"] == len(inside)


def test_interpolation_is_linear_and_never_extrapolates():
    runs = [{"id": "a", "group": "g"}, {"id": "b", "group": "g"}]
    points = [("a", "m", 0, 0.0), ("a", "m", 10, 10.0), ("b", "m", 5, 3.0), ("b", "m", 20, 6.0)]
    frame = rg.aggregate(make_runs(runs, points), align="interpolate")
    got = {row[0]: (row[1], row[2]) for row in frame.select("x", "n", "mean").rows()}
    assert got[0.0] == (1, 0.0)  # b starts at 5: not extrapolated back
    assert got[5.0] == (2, (5.0 + 3.0) / 2)  # a interpolated at 5
    assert got[10.0] == (2, (10.0 + 4.0) / 2)  # b interpolated at 10: 3 + 3 * 5/15
    assert got[20.0] == (1, 6.0)  # a ended at 10


@pytest.mark.parametrize("align", ["exact", "interpolate", "bucket", "auto"])
def test_every_non_finite_value_a_run_logged_is_counted(align):
    # a logged 1 and NaN at step 0, b logged inf there: two values left out, whatever the
    # alignment. At step 2 only b logged (NaN): a point of n = 0, dropped with its count,
    # except under interpolate where a is interpolated there.
    runs = [{"id": "a", "group": "g"}, {"id": "b", "group": "g"}]
    points = [("a", "m", 0, 1.0), ("a", "m", 0, math.nan), ("b", "m", 0, math.inf)]
    points += [("a", "m", 4, 2.0), ("b", "m", 2, math.nan), ("b", "m", 4, 5.0)]
    frame = rg.aggregate(make_runs(runs, points), align=align, points=3)
    first = frame.row(0, named=True)
    assert (first["n"], first["mean"], first["dropped"]) == (1, 1.0, 2)
    assert frame["dropped"].sum() == (3 if align in ("interpolate", "auto") else 2)


def test_bucket_bins_share_one_range_per_metric():
    runs = [{"id": "a", "group": "g"}, {"id": "b", "group": "h"}]
    points = [("a", "m", s, float(s)) for s in range(0, 10)] + [
        ("b", "m", s, 1.0) for s in range(50, 100)
    ]
    frame = rg.aggregate(make_runs(runs, points), align="bucket", points=10)
    # bins are 9.9 wide over [0, 99]; a's steps 0-9 fall into the first bin, centre 4.95
    first = frame.filter(pl.col("series") == "g")
    assert first["x"].to_list() == [pytest.approx(4.95)]
    assert first["mean"].to_list() == [pytest.approx(4.5)]
    assert set(frame.filter(pl.col("series") == "h")["x"].round(6).to_list()) <= {
        round(0 + (b + 0.5) * 9.9, 6) for b in range(10)
    }


def test_exact_counts_dropped_values_and_never_averages_them():
    runs = [{"id": "a", "group": "g"}, {"id": "b", "group": "g"}, {"id": "c", "group": "g"}]
    points = [("a", "m", 0, 1.0), ("b", "m", 0, math.nan), ("c", "m", 0, math.inf)]
    frame = rg.aggregate(make_runs(runs, points), align="exact")
    assert frame.select("n", "dropped", "mean").row(0) == (1, 2, 1.0)


def test_points_where_every_value_is_non_finite_are_dropped():
    runs = [{"id": "a", "group": "g"}]
    points = [("a", "m", 0, math.nan), ("a", "m", 1, 2.0)]
    frame = rg.aggregate(make_runs(runs, points), align="exact")
    assert frame["x"].to_list() == [1.0]


def test_min_runs_drops_thin_points():
    runs = [{"id": "a", "group": "g"}, {"id": "b", "group": "g"}]
    points = [("a", "m", 0, 1.0), ("b", "m", 0, 3.0), ("a", "m", 1, 2.0)]
    frame = rg.aggregate(make_runs(runs, points), align="exact", min_runs=2)
    assert frame.select("x", "n").rows() == [(0.0, 2)]


def test_t_interval_uses_student_t():
    runs = [{"id": f"r{i}", "group": "g"} for i in range(3)]
    points = [(f"r{i}", "m", 0, v) for i, v in enumerate([1.0, 2.0, 4.0])]
    row = rg.aggregate(make_runs(runs, points), band="ci").row(0, named=True)
    v = np.array([1.0, 2.0, 4.0])
    half = 4.302652729749464 * v.std(ddof=1) / np.sqrt(3)  # t(0.975, 2)
    assert row["ci_low"] == pytest.approx(v.mean() - half, rel=1e-13)
    assert row["ci_high"] == pytest.approx(v.mean() + half, rel=1e-13)
    assert (row["lower"], row["upper"]) == (row["ci_low"], row["ci_high"])
