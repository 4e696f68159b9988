"""The bootstrap behind `compare()` and `performance_profile()`, vectorised with numpy.

A group's n scores are sorted ascending and resampled on their own (stratified by group):
resample b is a vector of counts ``c_b`` (how often each sorted score is drawn, summing to
n): n positions drawn uniformly with replacement (``Generator.integers``) and counted, from
numpy's PCG64 seeded with ``(seed, n, 0)`` for the groups and ``(seed, n, 1)`` for the
baseline of a comparison, so both sides of a difference are independent. (The counts have the
multinomial distribution the aggregate's bootstrap draws directly, `stats.bootstrap_resamples`;
drawing positions and counting them is three to four times faster for a few hundred runs.)
A statistic of a resample is then a weighted sum over the sorted scores:

- mean: c_b . v / n;
- the mean of the resample's ranks [lo, hi) (its sorted values lo .. hi-1): weights
  w_j = clip(min(C_j, hi) - max(C_j - c_j, lo), 0) with C the cumulative counts, then
  w . v / (hi - lo). The median is ranks [(n-1)//2, n//2 + 1); the IQM ranks [n//4, n - n//4).

Groups of one size share their resamples, so their replicates are one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The stream of a comparison's baseline (the groups' is 0).
BASELINE_STREAM = 1
#: Gathered (resamples x values) blocks are at most this many entries.
_CHUNK = 4_000_000


def counts(n: int, samples: int, seed: int, stream: int = 0) -> np.ndarray:
    """Resample counts (samples, n) over n sorted values, from the groups' stream (0) or the
    baseline's (`BASELINE_STREAM`)."""
    rng = np.random.default_rng([seed, n, stream])
    drawn = np.empty((samples, n), dtype=np.int64)
    rows = max(1, _CHUNK // max(1, n))
    for begin in range(0, samples, rows):
        block = min(rows, samples - begin)
        positions = rng.integers(0, n, size=(block, n), dtype=np.int64)
        positions += np.arange(block, dtype=np.int64)[:, None] * n
        drawn[begin : begin + block] = np.bincount(positions.ravel(), minlength=block * n).reshape(
            block, n
        )
    return drawn


def rank_window(upto: np.ndarray, before: np.ndarray, low: int, high: int) -> np.ndarray:
    """Weights over the sorted values: how many copies of each fall in ranks [low, high),
    from the cumulative counts up to (`upto`) and before (`before`) each value."""
    weights: np.ndarray = np.minimum(upto, high)
    weights -= np.maximum(before, low)
    np.clip(weights, 0, None, out=weights)
    return weights.astype(np.float64)


@dataclass(frozen=True)
class Replicates:
    """Bootstrap replicates of the groups of one size n; columns follow `groups`."""

    groups: np.ndarray  # indexes of the groups (rows of the values matrix)
    counts: np.ndarray  # (samples, n)
    means: np.ndarray  # (samples, groups)
    medians: np.ndarray | None
    iqms: np.ndarray | None

    def column(self, group: int) -> int:
        return int(np.flatnonzero(self.groups == group)[0])


def replicates(
    values: list[np.ndarray], size: int, samples: int, seed: int, stream: int, full: bool
) -> Replicates:
    """Means (and with `full` medians and IQMs) of every resample of every group of `size`
    scores (each array sorted ascending)."""
    groups = np.array([i for i, v in enumerate(values) if v.size == size], dtype=np.int64)
    matrix = np.stack([values[i] for i in groups]).T  # (size, groups)
    drawn = counts(size, samples, seed, stream)
    means = drawn.astype(np.float64) @ matrix / size
    if not full:
        return Replicates(groups, drawn, means, None, None)
    upto = np.cumsum(drawn, axis=1)
    before = upto - drawn
    low, high = (size - 1) // 2, size // 2 + 1
    medians = rank_window(upto, before, low, high) @ matrix / (high - low)
    cut = size // 4
    iqms = rank_window(upto, before, cut, size - cut) @ matrix / (size - 2 * cut)
    return Replicates(groups, drawn, means, medians, iqms)


def percentile_interval(replicates: np.ndarray, level: float) -> np.ndarray:
    """(2, ...): the (1-level)/2 and (1+level)/2 quantiles along axis 0 (numpy linear)."""
    bounds: np.ndarray = np.quantile(
        replicates, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=0, method="linear"
    )
    return bounds


def _cumulative(resampled: np.ndarray) -> np.ndarray:
    """Cumulative counts with a leading zero column: (samples, n + 1)."""
    out = np.zeros((resampled.shape[0], resampled.shape[1] + 1), dtype=np.int64)
    np.cumsum(resampled, axis=1, out=out[:, 1:])
    return out


def improvement_replicates(
    x: np.ndarray, x_counts: np.ndarray, y: np.ndarray, y_counts: np.ndarray
) -> np.ndarray:
    """P(X > Y) + P(X = Y)/2 in every resample (`y` sorted ascending, counts aligned with the
    values): for each x value, the resampled numbers of y values below it and at most it are
    read from y's cumulative counts."""
    samples = x_counts.shape[0]
    cumulative = _cumulative(y_counts)
    below = np.searchsorted(y, x, side="left")
    at_most = np.searchsorted(y, x, side="right")
    out = np.empty(samples)
    step = max(1, _CHUNK // max(1, x.size))
    for begin in range(0, samples, step):
        block = cumulative[begin : begin + step]
        ties = block[:, below] + block[:, at_most]
        out[begin : begin + step] = (x_counts[begin : begin + step] * ties).sum(axis=1)
    result: np.ndarray = out / (2.0 * x.size * y.size)
    return result


def fraction_better(
    values: np.ndarray, resampled: np.ndarray, thresholds: np.ndarray, higher: bool
) -> np.ndarray:
    """The fraction of scores better than each threshold (> when higher is better, else <),
    per resample: (samples, thresholds). `values` sorted ascending, counts aligned."""
    cumulative = _cumulative(resampled)
    if higher:
        at_most = cumulative[:, np.searchsorted(values, thresholds, side="right")]
        fractions: np.ndarray = 1.0 - at_most / values.size
    else:
        fractions = cumulative[:, np.searchsorted(values, thresholds, side="left")] / values.size
    return fractions
