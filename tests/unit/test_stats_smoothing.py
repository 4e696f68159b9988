"""Smoothing: TensorBoard's EMA, the centred window and the gaussian, before and after."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from engine_helpers import make_runs
from hypothesis import given, settings
from hypothesis import strategies as st

import rungroup as rg
from rungroup.engine.smoothing import smooth


def tensorboard_ema(values: list[float], weight: float) -> list[float]:
    """A straight transcription of TensorBoard's resmoothDataset (vz_line_chart2)."""
    last = 0.0 if len(values) > 0 else math.nan
    num_accum = 0
    is_constant = all(v == values[0] for v in values)  # JS ==: NaN is never equal
    out = []
    for next_val in values:
        if is_constant or not math.isfinite(next_val):
            out.append(next_val)
        else:
            last = last * weight + (1 - weight) * next_val
            num_accum += 1
            debias_weight = 1.0
            if weight != 1:
                debias_weight = 1.0 - weight**num_accum
            out.append(last / debias_weight)
    return out


def smooth_one(values: list[float], **fields) -> list[float]:
    frame = pl.DataFrame(
        {"g": [0] * len(values), "x": np.arange(len(values), dtype=float), "v": values},
        schema={"g": pl.Int64, "x": pl.Float64, "v": pl.Float64},
    )
    return smooth(frame, ["v"], ["g"], rg.View(**fields))["v"].to_list()


def same(a: list[float], b: list[float]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if math.isnan(x) or math.isnan(y):
            if not (math.isnan(x) and math.isnan(y)):
                return False
        elif math.isinf(x) or math.isinf(y):
            if x != y:
                return False
        elif abs(x - y) > 1e-12 * max(1.0, abs(x), abs(y)):
            return False
    return True


VECTORS = [
    [1.0, 2.0, 3.0, 4.0, 5.0],
    [5.0, 5.0, 5.0, 5.0],  # constant: unchanged
    [0.1] * 7,  # constant where the EMA would not give back 0.1 exactly
    [1.0, math.nan, 3.0, math.inf, 2.0, -math.inf, 5.0, -1.0],
    [math.nan, 1.0, 2.0],
    [math.nan, math.nan],
    [2.0, 2.0, math.nan, 2.0],  # a NaN makes it non-constant for TensorBoard
    [3.0],
    [1e6, -1e6, 1e6, -1e6, 0.5],
]


@pytest.mark.parametrize("values", VECTORS)
@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_ema_matches_tensorboard(values, weight):
    got = smooth_one(values, smoothing="ema", smoothing_param=weight)
    assert same(got, tensorboard_ema(values, weight)), (got, tensorboard_ema(values, weight))


def test_constant_series_is_returned_unchanged_bit_for_bit():
    assert smooth_one([0.1] * 7, smoothing="ema", smoothing_param=0.9) == [0.1] * 7


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(-1e3, 1e3, allow_nan=False),
            st.sampled_from([math.nan, math.inf, -math.inf]),
        ),
        min_size=1,
        max_size=30,
    ),
    st.floats(0.0, 0.999),
)
def test_ema_matches_tensorboard_on_random_vectors(values, weight):
    got = smooth_one(values, smoothing="ema", smoothing_param=weight)
    assert same(got, tensorboard_ema(values, weight))


def window_reference(values: list[float], k: int) -> list[float]:
    out = []
    for i, v in enumerate(values):
        if not math.isfinite(v):
            out.append(v)
            continue
        around = values[max(0, i - k // 2) : i + (k - 1) // 2 + 1]
        finite = [a for a in around if math.isfinite(a)]
        out.append(float(np.mean(finite)))
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.sampled_from([math.nan, math.inf])),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 9),
)
def test_window_is_a_centred_mean_of_finite_neighbours(values, k):
    got = smooth_one(values, smoothing="window", smoothing_param=k)
    assert same(got, window_reference(values, k))


def gaussian_reference(x: list[float], values: list[float], sigma: float) -> list[float]:
    out = []
    for xi, vi in zip(x, values, strict=True):
        if not math.isfinite(vi):
            out.append(vi)
            continue
        num = den = 0.0
        for xj, vj in zip(x, values, strict=True):
            if math.isfinite(vj) and abs(xj - xi) <= 4 * sigma:
                w = math.exp(-0.5 * ((xj - xi) / sigma) ** 2)
                num += w * vj
                den += w
        out.append(num / den)
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 200),
            st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.just(math.nan)),
        ),
        min_size=1,
        max_size=30,
        unique_by=lambda p: p[0],
    ),
    st.floats(0.5, 40.0),
)
def test_gaussian_weights_neighbours_by_distance_in_x(pairs, sigma):
    pairs.sort()
    x = [float(p[0]) for p in pairs]
    values = [p[1] for p in pairs]
    frame = pl.DataFrame({"g": [0] * len(x), "x": x, "v": values})
    got = smooth(frame, ["v"], ["g"], rg.View(smoothing="gaussian", smoothing_param=sigma))
    assert same(got["v"].to_list(), gaussian_reference(x, values, sigma))


def series_sets(even: bool):
    """Several series of their own lengths, with NaN and inf among the values: evenly spaced
    (steps of 0.5, 1, 2 or 3 from their own start) or at any distinct integers."""
    value = st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.sampled_from([math.nan, math.inf]))
    if even:
        one = st.tuples(
            st.sampled_from([0.5, 1.0, 2.0, 3.0]),
            st.integers(-5, 5),
            st.lists(value, min_size=1, max_size=25),
        ).map(lambda t: [(t[1] + i * t[0], v) for i, v in enumerate(t[2])])
    else:
        one = st.lists(
            st.tuples(st.integers(0, 60).map(float), value),
            min_size=1,
            max_size=25,
            unique_by=lambda p: p[0],
        ).map(sorted)
    return st.lists(one, min_size=1, max_size=5)


def smooth_series(series: list[list[tuple[float, float]]], **fields) -> list[list[float]]:
    frame = pl.DataFrame(
        {
            "g": [i for i, points in enumerate(series) for _ in points],
            "x": [x for points in series for x, _ in points],
            "v": [v for points in series for _, v in points],
        },
        schema={"g": pl.Int64, "x": pl.Float64, "v": pl.Float64},
    )
    out = smooth(frame, ["v"], ["g"], rg.View(**fields))
    return [part["v"].to_list() for part in out.partition_by("g", maintain_order=True)]


@settings(max_examples=300, deadline=None)
@given(st.booleans().flatmap(series_sets), st.floats(0.2, 12.0))
def test_gaussian_of_several_series_matches_the_reference(series, sigma):
    # evenly spaced series are convolved (one kernel per spacing), the others go pair by pair
    got = smooth_series(series, smoothing="gaussian", smoothing_param=sigma)
    for points, smoothed in zip(series, got, strict=True):
        x, values = [p[0] for p in points], [p[1] for p in points]
        assert same(smoothed, gaussian_reference(x, values, sigma))


@settings(max_examples=300, deadline=None)
@given(series_sets(even=False), st.integers(1, 9), st.floats(0.0, 0.99))
def test_window_and_ema_of_several_series_match_the_references(series, k, weight):
    windows = smooth_series(series, smoothing="window", smoothing_param=k)
    emas = smooth_series(series, smoothing="ema", smoothing_param=weight)
    for points, window, ema in zip(series, windows, emas, strict=True):
        values = [p[1] for p in points]
        assert same(window, window_reference(values, k))
        assert same(ema, tensorboard_ema(values, weight))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(
                st.floats(-1e3, 1e3, allow_nan=False),
                st.sampled_from([math.nan, math.inf, -math.inf, 1.0]),
            ),
            min_size=1,
            max_size=8,
        ),
        min_size=64,
        max_size=120,
    ),
    st.floats(0.0, 0.999),
    st.booleans(),
)
def test_ema_of_many_series_at_once_matches_tensorboard(series, weight, even):
    # enough series for the EMA to run down the columns of a (series x points) table
    if even:
        series = [(values * 8)[:8] for values in series]
    got = smooth_series(
        [[(float(i), v) for i, v in enumerate(values)] for values in series],
        smoothing="ema",
        smoothing_param=weight,
    )
    for values, smoothed in zip(series, got, strict=True):
        assert same(smoothed, tensorboard_ema(values, weight))


def test_smoothing_stays_inside_each_group():
    frame = pl.DataFrame({"g": [0, 0, 1, 1], "x": [0.0, 1.0, 0.0, 1.0], "v": [0.0, 0.0, 9.0, 9.0]})
    for kind, param in [("ema", 0.9), ("window", 3), ("gaussian", 5.0)]:
        out = smooth(frame, ["v"], ["g"], rg.View(smoothing=kind, smoothing_param=param))
        assert out["v"].to_list() == [0.0, 0.0, 9.0, 9.0]


def curves():
    runs = [{"id": "a", "group": "g"}, {"id": "b", "group": "g"}]
    points = [("a", "m", s, float((s * 7) % 5)) for s in range(10)]
    points += [("b", "m", s, float((s * 3) % 4)) for s in range(10)]
    return make_runs(runs, points)


def test_before_smooths_each_run_then_aggregates():
    runs = curves()
    per_run = rg.aggregate(runs, grouping=False, smoothing="ema", smoothing_param=0.7)
    grouped = rg.aggregate(runs, smoothing="ema", smoothing_param=0.7)
    a = per_run.filter(pl.col("run_id") == "a")["line"].to_numpy()
    b = per_run.filter(pl.col("run_id") == "b")["line"].to_numpy()
    np.testing.assert_allclose(grouped["mean"], (a + b) / 2, rtol=1e-12)
    raw_a = [float((s * 7) % 5) for s in range(10)]
    np.testing.assert_allclose(a, tensorboard_ema(raw_a, 0.7), rtol=1e-12)


def test_after_smooths_line_and_band_alike():
    runs = curves()
    raw = rg.aggregate(runs, band="std")
    after = rg.aggregate(
        runs, band="std", smoothing="ema", smoothing_param=0.7, smooth_order="after"
    )
    for column in ["line", "lower", "upper", "mean", "std", "median"]:
        expected = tensorboard_ema(raw[column].to_list(), 0.7)
        np.testing.assert_allclose(after[column], expected, rtol=1e-12)
    assert after["n"].equals(raw["n"])
    assert (after["lower"] <= after["line"]).all() and (after["line"] <= after["upper"]).all()


def test_gaussian_sigma_is_in_x_units():
    runs = make_runs(
        [{"id": "a", "group": "g"}],
        [("a", "m", 0, 0.0), ("a", "m", 1000, 10.0), ("a", "m", 2000, 0.0)],
    )
    narrow = rg.aggregate(runs, smoothing="gaussian", smoothing_param=1.0)
    assert narrow["line"].to_list() == [0.0, 10.0, 0.0]  # neighbours are 1000 sigma away
    wide = rg.aggregate(runs, smoothing="gaussian", smoothing_param=1000.0)
    w = math.exp(-0.5)
    assert wide["line"][1] == pytest.approx(10.0 / (1 + 2 * w), rel=1e-12)


def test_gaussian_sigma_is_in_seconds_for_timestamps():
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    history = pl.DataFrame(
        {
            "run_id": ["a"] * 3,
            "metric": ["m"] * 3,
            "step": [0, 1, 2],
            "timestamp": [start + timedelta(seconds=s) for s in (0, 1000, 2000)],
            "value": [0.0, 10.0, 0.0],
        }
    )
    runs = rg.Runs(pl.DataFrame({"id": ["a"], "group": ["g"]}), history)
    wide = rg.aggregate(runs, x="timestamp", smoothing="gaussian", smoothing_param=1000.0)
    assert wide["line"][1] == pytest.approx(10.0 / (1 + 2 * math.exp(-0.5)), rel=1e-12)
    narrow = rg.aggregate(runs, x="timestamp", smoothing="gaussian", smoothing_param=1.0)
    assert narrow["line"].to_list() == [0.0, 10.0, 0.0]
