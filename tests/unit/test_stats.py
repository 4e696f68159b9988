"""The statistics match numpy, pandas and scipy to 1e-12; the t quantiles match scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from engine_helpers import make_runs
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import rungroup as rg
from rungroup.engine.tdist import t_quantile


@pytest.mark.parametrize("p", [0.55, 0.75, 0.9, 0.95, 0.975, 0.995, 0.9995, 0.99999])
def test_t_quantile_matches_scipy(p):
    for df in [*range(1, 301), 500, 999, 1000, 2500, 5000, 10_000]:
        assert t_quantile(p, float(df)) == pytest.approx(sps.t.ppf(p, df), rel=1e-12, abs=0)


def _t_quantile_40_digits(p: float, df: float) -> object:
    """The quantile solved in 40-digit arithmetic from the regularised incomplete beta."""
    import mpmath as mp

    with mp.workdps(40):
        p_, df_ = mp.mpf(p), mp.mpf(df)

        def cdf(t: object) -> object:
            tail = mp.betainc(df_ / 2, mp.mpf(1) / 2, 0, df_ / (df_ + t * t), regularized=True) / 2
            return 1 - tail if t > 0 else tail

        return mp.findroot(lambda t: cdf(t) - p_, mp.mpf(sps.t.ppf(p, df)))


@pytest.mark.parametrize("df", [1.0, 7.0, 1e3, 10_667.0, 3e4, 99_999.0, 1e5, 1e6, 1e8])
def test_t_quantile_to_1e_12_against_a_40_digit_reference(df: float) -> None:
    """The bound docs/statistics.md states, at every df, including where the continued
    fraction hands over to the asymptotic series (`ASYMPTOTIC_DF`)."""
    import mpmath as mp

    for p in [0.5000001, 0.505, 0.6, 0.75, 0.9, 0.975, 0.995, 0.9995, 0.99999]:
        reference = _t_quantile_40_digits(p, df)
        error = abs((mp.mpf(t_quantile(p, df)) - reference) / reference)
        assert error < 1e-12, (p, df, float(error))


def test_t_quantile_is_odd_and_checks_its_arguments():
    assert t_quantile(0.025, 4.0) == -t_quantile(0.975, 4.0)
    assert t_quantile(0.5, 7.0) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        t_quantile(1.0, 3.0)


def demo_like_runs(seed: int = 0, groups: int = 4, seeds: int = 5, steps: int = 60) -> rg.Runs:
    """Learning curves like the demo's: a few settings, a handful of seeds each."""
    rng = np.random.default_rng(seed)
    runs, points = [], []
    for g in range(groups):
        for s in range(seeds):
            run_id = f"g{g}s{s}"
            runs.append({"id": run_id, "group": f"lr={10.0**-g}", "config.seed": s})
            curve = 2.0 * np.exp(-np.arange(steps) / (10 + 5 * g)) + rng.normal(0, 0.05, steps)
            points += [(run_id, "val_loss", int(i), float(v)) for i, v in enumerate(curve)]
    return make_runs(runs, points)


STAT_NAMES = (
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


def assert_matches_pandas(runs: rg.Runs, key: str) -> int:
    """aggregate(exact, grouped by `key`) equals pandas/scipy per (key, metric, step)."""
    frame = rg.aggregate(runs, group_by=key, align="exact", band="ci", points=100_000)
    history = runs.history.collect().to_pandas()
    history["run_id"] = history["run_id"].astype(str)
    history["metric"] = history["metric"].astype(str)
    groups = runs.runs.select("id", key).to_pandas().rename(columns={"id": "run_id"})
    table = history.merge(groups, on="run_id")
    grouped = table.groupby([key, "metric", "step"])["value"]
    expected = pd.DataFrame(
        {
            "mean": grouped.mean(),
            "median": grouped.median(),
            "min": grouped.min(),
            "max": grouped.max(),
            "std": grouped.std(ddof=1),
            "n": grouped.count(),
            "q_low": grouped.quantile(0.25, interpolation="linear"),
            "q_high": grouped.quantile(0.75, interpolation="linear"),
            "iqm": grouped.agg(lambda v: sps.trim_mean(v, 0.25)),
        }
    ).reset_index()
    expected["stderr"] = expected["std"] / np.sqrt(expected["n"])
    t = sps.t.ppf(0.975, expected["n"] - 1)
    expected["ci_low"] = expected["mean"] - t * expected["stderr"]
    expected["ci_high"] = expected["mean"] + t * expected["stderr"]
    got = frame.to_pandas().rename(columns={"x": "step"})
    got["step"] = got["step"].astype(int)
    merged = expected.merge(got, on=[key, "metric", "step"], suffixes=("_ref", ""))
    assert len(merged) == len(expected) == frame.height
    for name in STAT_NAMES:
        np.testing.assert_allclose(merged[name], merged[f"{name}_ref"], rtol=1e-12, atol=1e-12)
    assert (merged["n"] == merged["n_ref"]).all()
    return frame.height


def test_statistics_match_pandas_and_scipy_on_demo_like_runs():
    assert assert_matches_pandas(demo_like_runs(), "group") == 4 * 60


def test_statistics_match_pandas_and_scipy_on_the_demo_runs(demo_runs):
    runs = rg.load(demo_runs)
    assert len(runs) > 10
    assert assert_matches_pandas(runs, "config.lr") > 0
    assert assert_matches_pandas(runs, "group") > 0


def test_seaborn_style_sd_band_is_mean_plus_minus_sample_std():
    runs = demo_like_runs(seed=3)
    frame = rg.aggregate(runs, align="exact", band="std")
    np.testing.assert_allclose(frame["lower"], frame["mean"] - frame["std"], rtol=0, atol=0)
    np.testing.assert_allclose(frame["upper"], frame["mean"] + frame["std"], rtol=0, atol=0)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=9),
    st.floats(0.0, 0.5),
    st.floats(0.5, 1.0),
    st.floats(0.5, 0.999),
)
def test_one_point_statistics_match_numpy(values, q_low, q_high, level):
    runs = [{"id": f"r{i}", "group": "g"} for i in range(len(values))]
    points = [(f"r{i}", "m", 0, v) for i, v in enumerate(values)]
    row = rg.aggregate(
        make_runs(runs, points), quantiles=(q_low, q_high), ci_level=level, band="ci"
    ).row(0, named=True)
    v = np.array(values)
    n = v.size
    scale = max(1.0, float(np.abs(v).max()))
    tol = {"rel": 1e-12, "abs": 1e-12 * scale}
    assert row["n"] == n
    assert row["mean"] == pytest.approx(v.mean(), **tol)
    assert row["median"] == pytest.approx(np.median(v), **tol)
    assert row["q_low"] == pytest.approx(np.quantile(v, q_low, method="linear"), **tol)
    assert row["q_high"] == pytest.approx(np.quantile(v, q_high, method="linear"), **tol)
    assert row["iqm"] == pytest.approx(sps.trim_mean(v, 0.25), **tol)
    assert (row["min"], row["max"]) == (v.min(), v.max())
    if n == 1:
        assert row["std"] is row["stderr"] is row["ci_low"] is row["ci_high"] is None
        assert row["lower"] == row["upper"] == row["line"] == values[0]
    else:
        std = v.std(ddof=1)
        assert row["std"] == pytest.approx(std, **tol)
        assert row["stderr"] == pytest.approx(std / math.sqrt(n), **tol)
        half = sps.t.ppf((1 + level) / 2, n - 1) * std / math.sqrt(n)
        assert row["ci_low"] == pytest.approx(v.mean() - half, **tol)
        assert row["ci_high"] == pytest.approx(v.mean() + half, **tol)


@pytest.mark.parametrize(
    ("band", "lower", "upper"),
    [
        ("none", "line", "line"),
        ("minmax", "min", "max"),
        ("quantile", "q_low", "q_high"),
        ("ci", "ci_low", "ci_high"),
    ],
)
def test_bands_are_the_named_statistics(band, lower, upper):
    frame = rg.aggregate(demo_like_runs(), align="exact", band=band, line="median")
    assert frame["line"].equals(frame["median"], check_names=False)
    assert frame["lower"].equals(frame[lower], check_names=False)
    assert frame["upper"].equals(frame[upper], check_names=False)


@pytest.mark.parametrize("band", ["std", "stderr"])
def test_std_bands_are_centred_on_the_mean_whatever_the_line(band):
    frame = rg.aggregate(demo_like_runs(), align="exact", band=band, line="max")
    assert frame["line"].equals(frame["max"], check_names=False)
    np.testing.assert_array_equal(frame["lower"], frame["mean"] - frame[band])
    np.testing.assert_array_equal(frame["upper"], frame["mean"] + frame[band])


def test_n_equal_one_collapses_every_band_onto_the_line():
    runs = make_runs([{"id": "a", "group": "g"}], [("a", "m", 0, 2.5), ("a", "m", 1, 3.5)])
    for band in ["std", "stderr", "ci", "quantile", "minmax", "none"]:
        for method in ["t", "bootstrap"]:
            frame = rg.aggregate(runs, band=band, ci_method=method)
            assert frame["lower"].to_list() == frame["line"].to_list() == [2.5, 3.5]
            assert frame["upper"].to_list() == [2.5, 3.5]
            assert frame["std"].null_count() == frame["ci_low"].null_count() == 2


def bootstrap_row(values, reverse=False, **fields):
    runs = [{"id": f"r{i}", "group": "g"} for i in range(len(values))]
    points = [(f"r{i}", "m", 0, v) for i, v in enumerate(values)]
    if reverse:  # the same runs, listed the other way round
        runs, points = runs[::-1], points[::-1]
    return rg.aggregate(make_runs(runs, points), ci_method="bootstrap", band="ci", **fields).row(
        0, named=True
    )


def test_bootstrap_is_seeded_and_order_independent():
    values = [0.3, 1.2, 0.8, 2.5, 1.9, 0.1]
    first = bootstrap_row(values)
    assert bootstrap_row(values) == first
    assert bootstrap_row(values, reverse=True) == first
    assert bootstrap_row(values, seed=1) != first
    assert min(values) <= first["ci_low"] < first["mean"] < first["ci_high"] <= max(values)


def test_bootstrap_is_the_percentile_interval_of_resampled_means():
    values = np.array([0.3, 1.2, 0.8, 2.5, 1.9, 0.1])
    row = bootstrap_row(list(values), bootstrap_samples=500, seed=7, ci_level=0.9)
    # the same resamples, drawn as the docs say: PCG64 seeded with (seed, n), multinomial counts
    rng = np.random.default_rng([7, 6])
    counts = rng.multinomial(6, np.full(6, 1 / 6), size=500)
    means = counts @ np.sort(values) / 6
    low, high = np.quantile(means, [0.05, 0.95], method="linear")
    assert row["ci_low"] == pytest.approx(low, rel=1e-12)
    assert row["ci_high"] == pytest.approx(high, rel=1e-12)


def test_bootstrap_agrees_with_t_interval_for_normal_data():
    rng = np.random.default_rng(0)
    values = list(rng.normal(10.0, 2.0, 400))
    boot = bootstrap_row(values, bootstrap_samples=4000)
    t_row = rg.aggregate(
        make_runs(
            [{"id": f"r{i}", "group": "g"} for i in range(400)],
            [(f"r{i}", "m", 0, v) for i, v in enumerate(values)],
        ),
        band="ci",
    ).row(0, named=True)
    width_t = t_row["ci_high"] - t_row["ci_low"]
    assert boot["ci_low"] == pytest.approx(t_row["ci_low"], abs=0.1 * width_t)
    assert boot["ci_high"] == pytest.approx(t_row["ci_high"], abs=0.1 * width_t)


def test_constant_values_have_zero_spread():
    row = bootstrap_row([4.0, 4.0, 4.0])
    assert row["std"] == 0.0
    assert row["ci_low"] == row["ci_high"] == 4.0


def test_statistics_frame_types():
    frame = rg.aggregate(demo_like_runs())
    assert frame.schema["n"] == pl.Int64
    assert frame.schema["dropped"] == pl.Int64
    assert frame.schema["x"] == pl.Float64
