"""Statistics across runs at one x, and the line and band drawn from them (docs/architecture.md).

Over the finite values ``v_1 .. v_n`` of the n runs that contribute at one point:

- ``mean``, ``median`` (the average of the two middle values for even n), ``min``, ``max``;
- ``std`` = sample standard deviation, ddof = 1; ``stderr`` = std / sqrt(n);
- ``ci_low``/``ci_high`` = mean ∓ t_{(1+level)/2, n-1} · stderr (``ci_method="t"``), or the
  seeded percentile bootstrap of the mean (``ci_method="bootstrap"``, see `bootstrap_ci`);
- ``q_low``/``q_high`` = the view's quantiles, numpy's "linear" method
  (h = (n-1)·q, interpolate between the values of rank floor(h) and ceil(h));
- ``iqm`` = mean of the sorted values with floor(n/4) cut off each end
  (scipy.stats.trim_mean(v, 0.25), what rliable reports as IQM).

With n = 1, std, stderr and the ci are null; `line_and_band` then puts the band onto the line.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from rungroup.engine.tdist import t_quantile
from rungroup.view import BAND_TABLE, Bound, View

STAT_COLUMNS = (
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

#: Bootstrap means are computed in chunks of at most this many (points × samples).
_BOOTSTRAP_CHUNK = 4_000_000


def _iqm(v: pl.Expr, n: pl.Expr) -> pl.Expr:
    cut = n // 4
    return v.drop_nulls().sort().slice(cut, n - 2 * cut).mean()


def statistics(aligned: pl.DataFrame, view: View) -> pl.DataFrame:
    """One row per (_s, _m, x): n, dropped and every statistic (ci by t or bootstrap)."""
    v = pl.col("v")
    n = v.count()
    low_q, high_q = view.quantiles
    # `aligned` comes sorted by point key _k and, within a point, by run (runs are numbered in
    # id order): every sum runs in the same order whatever order the runs came in, so results
    # are bit-for-bit independent of it. A sorted key also gives the group-by its fast path.
    frame = aligned.with_columns(pl.col("_k").set_sorted())
    keys = frame["_k"].to_numpy()
    if keys.size and bool(np.all(keys[1:] != keys[:-1])):
        return _single_run_points(frame)
    stats = frame.group_by("_k", maintain_order=True).agg(
        pl.col("_s").first(),
        pl.col("_m").first(),
        pl.col("x").first(),
        n.cast(pl.Int64).alias("n"),
        pl.col("d").sum().cast(pl.Int64).alias("dropped"),
        v.mean().alias("mean"),
        # numpy's median: the mean of the two middle values (Polars' median interpolates,
        # which can differ in the last bit)
        v.quantile(0.5, "midpoint").alias("median"),
        v.min().alias("min"),
        v.max().alias("max"),
        v.std(ddof=1).alias("std"),
        v.quantile(low_q, "linear").alias("q_low"),
        v.quantile(high_q, "linear").alias("q_high"),
        _iqm(v, n).alias("iqm"),
    )
    stats = stats.with_columns(
        pl.when(pl.col("n") >= 2).then(pl.col("std")).alias("std"),
    ).with_columns((pl.col("std") / pl.col("n").cast(pl.Float64).sqrt()).alias("stderr"))
    if view.ci_method == "t":
        stats = _t_interval(stats, view.ci_level)
    else:
        low, high = bootstrap_ci(frame, stats, view)
        stats = stats.with_columns(
            pl.Series("ci_low", low, dtype=pl.Float64, nan_to_null=True),
            pl.Series("ci_high", high, dtype=pl.Float64, nan_to_null=True),
        )
    return stats.select("_s", "_m", "x", "n", "dropped", *STAT_COLUMNS)


def _single_run_points(frame: pl.DataFrame) -> pl.DataFrame:
    """Every point has one run (e.g. grouping off): each statistic is that run's value, and
    the spreads are null; the same numbers as the group-by gives, without grouping."""
    v = pl.col("v")
    spread = pl.lit(None, dtype=pl.Float64)
    return frame.select(
        "_s",
        "_m",
        "x",
        v.is_not_null().cast(pl.Int64).alias("n"),
        pl.col("d").cast(pl.Int64).alias("dropped"),
        v.alias("mean"),
        v.alias("median"),
        v.alias("min"),
        v.alias("max"),
        spread.alias("std"),
        spread.alias("stderr"),
        spread.alias("ci_low"),
        spread.alias("ci_high"),
        v.alias("q_low"),
        v.alias("q_high"),
        v.alias("iqm"),
    )


def _t_interval(stats: pl.DataFrame, level: float) -> pl.DataFrame:
    sizes = stats.filter(pl.col("n") >= 2)["n"].unique().sort().to_list()
    p = (1.0 + level) / 2.0
    table = pl.DataFrame(
        {"n": sizes, "_t": [t_quantile(p, float(size - 1)) for size in sizes]},
        schema={"n": pl.Int64, "_t": pl.Float64},
    )
    half = pl.col("_t") * pl.col("stderr")
    return (
        stats.join(table, on="n", how="left", maintain_order="left")
        .with_columns(
            (pl.col("mean") - half).alias("ci_low"), (pl.col("mean") + half).alias("ci_high")
        )
        .drop("_t")
    )


def bootstrap_resamples(n: int, samples: int, seed: int) -> np.ndarray:
    """How often each of n sorted values is drawn, per resample: an int array (samples, n).

    Drawn from numpy's PCG64 seeded with ``(seed, n)``: every point with the same n uses the
    same resamples, so a point's interval depends only on its values, the seed and the count.
    """
    rng = np.random.default_rng([seed, n])
    return rng.multinomial(n, np.full(n, 1.0 / n), size=samples)


def bootstrap_ci(
    frame: pl.DataFrame, stats: pl.DataFrame, view: View
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean for every row of `stats` (NaN for n < 2).

    `frame` holds the contributions sorted by their point key _k; `stats` its points in order.
    For a point with values v (sorted) and each resample's counts c: mean* = c·v / n; the
    interval is the ((1-level)/2, (1+level)/2) quantiles (numpy linear) of the means*.
    """
    finite = frame.filter(pl.col("v").is_not_null()).sort("_k", "v")
    values = finite["v"].to_numpy()
    counts = stats["n"].to_numpy()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    low = np.full(counts.size, np.nan)
    high = np.full(counts.size, np.nan)
    quantiles = [(1.0 - view.ci_level) / 2.0, (1.0 + view.ci_level) / 2.0]
    for size in np.unique(counts):
        if size < 2:
            continue
        rows = np.flatnonzero(counts == size)
        weights = bootstrap_resamples(int(size), view.bootstrap_samples, view.seed).T
        chunk = max(1, _BOOTSTRAP_CHUNK // view.bootstrap_samples)
        for begin in range(0, rows.size, chunk):
            part = rows[begin : begin + chunk]
            matrix = values[starts[part][:, None] + np.arange(size)[None, :]]
            means = matrix @ weights / size
            bounds = np.quantile(means, quantiles, axis=1, method="linear")
            low[part] = bounds[0]
            high[part] = bounds[1]
    return low, high


def _bound(bound: Bound, line: pl.Expr) -> pl.Expr:
    base = line if bound.base == "line" else pl.col(bound.base)
    if bound.offset is None:
        return base
    offset = pl.col(bound.offset)
    return base + offset if bound.sign > 0 else base - offset


def line_and_band(stats: pl.DataFrame, view: View) -> pl.DataFrame:
    """Add ``line``, ``lower``, ``upper`` (`view.BAND_TABLE`); a band that is null (n = 1) lies
    on the line."""
    line = pl.col(view.line)
    band = BAND_TABLE[view.band]
    return stats.with_columns(
        line.alias("line"),
        _bound(band.lower, line).fill_null(line).alias("lower"),
        _bound(band.upper, line).fill_null(line).alias("upper"),
    )
