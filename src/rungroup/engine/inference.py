"""Closed-form estimates and tests behind `compare()` (docs/statistics.md, "Comparing groups").

Pure numpy over 1-d float arrays of scores; t probabilities and quantiles are `tdist.py`'s.
A statistic that is undefined for the data (too few values, zero variance) is None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rungroup.engine.tdist import t_quantile, t_upper_tail

Result = dict[str, float | None]


def iqm(values: np.ndarray) -> float:
    """Mean of the sorted values with floor(n/4) left out at each end (trim_mean(v, 0.25))."""
    cut = values.size // 4
    return float(np.sort(values)[cut : values.size - cut].mean())


def two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    return min(1.0, 2.0 * t_upper_tail(abs(t), df))


def t_interval(values: np.ndarray, level: float) -> tuple[float, float] | None:
    """mean -+ t_{(1+level)/2, n-1} * std / sqrt(n); None for n < 2."""
    if values.size < 2:
        return None
    mean = float(values.mean())
    half = (
        t_quantile((1.0 + level) / 2.0, float(values.size - 1))
        * float(values.std(ddof=1))
        / math.sqrt(values.size)
    )
    return mean - half, mean + half


def welch(x: np.ndarray, y: np.ndarray, level: float) -> Result:
    """Welch's t test of mean(x) - mean(y): ``diff``, its interval, ``t``, ``df``, ``p_value``.

    se^2 = s_x^2/n_x + s_y^2/n_y; df = se^4 / ((s_x^2/n_x)^2/(n_x-1) + (s_y^2/n_y)^2/(n_y-1));
    t = diff / se; the interval is diff -+ t_{(1+level)/2, df} * se.
    """
    out: Result = dict.fromkeys(("diff", "diff_low", "diff_high", "t", "df", "p_value"))
    diff = float(x.mean() - y.mean())
    out["diff"] = diff
    if x.size < 2 or y.size < 2:
        return out
    vx = float(x.var(ddof=1)) / x.size
    vy = float(y.var(ddof=1)) / y.size
    se2 = vx + vy
    if not se2 > 0:
        return out
    se = math.sqrt(se2)
    df = se2 * se2 / (vx * vx / (x.size - 1) + vy * vy / (y.size - 1))
    t = diff / se
    half = t_quantile((1.0 + level) / 2.0, df) * se
    out.update(diff_low=diff - half, diff_high=diff + half, t=t, df=df, p_value=two_sided_p(t, df))
    return out


def hedges_g(x: np.ndarray, y: np.ndarray) -> float | None:
    """(mean(x) - mean(y)) / s_pooled times the exact small-sample factor
    J(df) = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2)), df = n_x + n_y - 2 (None for df < 2)."""
    df = x.size + y.size - 2
    if df < 2:
        return None
    squares = float(((x - x.mean()) ** 2).sum() + ((y - y.mean()) ** 2).sum())
    if not squares > 0:
        return None
    d = float(x.mean() - y.mean()) / math.sqrt(squares / df)
    return d * math.exp(math.lgamma(df / 2.0) - math.lgamma((df - 1) / 2.0)) / math.sqrt(df / 2.0)


def probability_of_improvement(x: np.ndarray, y_sorted: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 over all (x, y) pairs; `y_sorted` ascending."""
    below = np.searchsorted(y_sorted, x, side="left")
    at_most = np.searchsorted(y_sorted, x, side="right")
    return float((below + at_most).sum() / (2.0 * x.size * y_sorted.size))


def paired(d: np.ndarray, level: float, ratio: float | None) -> Result:
    """The paired t test of the differences `d` (``paired_*``) and, with `ratio` (test size /
    train size), Nadeau and Bengio's corrected resampled t test (``nb_*``): the variance of the
    mean difference is (1/J + ratio) s^2 instead of s^2 / J, with J - 1 degrees of freedom."""
    names = ["paired_diff", "paired_low", "paired_high", "paired_t", "paired_p"]
    if ratio is not None:
        names += ["nb_low", "nb_high", "nb_t", "nb_p"]
    out: Result = dict.fromkeys(names)
    if d.size == 0:
        return out
    mean = float(d.mean())
    out["paired_diff"] = mean
    variance = float(d.var(ddof=1)) if d.size >= 2 else 0.0
    if not variance > 0:
        return out
    df = float(d.size - 1)
    quantile = t_quantile((1.0 + level) / 2.0, df)
    factors = {"paired": 1.0 / d.size}
    if ratio is not None:
        factors["nb"] = 1.0 / d.size + ratio
    for name, factor in factors.items():
        se = math.sqrt(factor * variance)
        t = mean / se
        out[f"{name}_low"] = mean - quantile * se
        out[f"{name}_high"] = mean + quantile * se
        out[f"{name}_t"] = t
        out[f"{name}_p"] = two_sided_p(t, df)
    return out


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of the non-null p-values (nulls stay null): the i-th
    smallest of m becomes max over j <= i of min(1, (m - j + 1) p_(j))."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))
        out[i] = running
    return out
