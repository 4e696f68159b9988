"""Smoothing of series: TensorBoard's debiased EMA, a centred window, a gaussian in x units.

Every smoother works on the points of one series in x order and treats non-finite values (NaN,
±inf, null) alike: they are passed through unchanged, and they take no part in smoothing their
neighbours. `smooth(frame, columns, by, view)` smooths each of `columns` within the groups
`by`; the frame must already be sorted by ``(*by, "x")``.

- ``ema`` (weight w in [0, 0.999]): TensorBoard's ``resmoothDataset``. With
  ``last_0 = 0`` and ``k`` counting the finite values seen so far,
  ``last_k = w·last_{k-1} + (1 - w)·v``, smoothed ``= last_k / (1 - w^k)``. A series whose
  values all equal the first (IEEE comparison, so any NaN makes it non-constant) is returned
  unchanged. This equals the adjusted exponentially weighted mean with ``alpha = 1 - w`` over the
  finite values, which is how it is computed here (Polars ``ewm_mean(adjust=True)``).
- ``window`` (k points): the mean of the finite values among the k points around each point:
  indexes ``i - k//2`` to ``i + (k-1)//2``, shrinking at the ends.
- ``gaussian`` (sigma in x units): the mean of the finite values weighted by
  ``exp(-(x_j - x_i)^2 / (2 sigma^2))`` over the points with ``|x_j - x_i| <= 4 sigma``
  (the kernel is cut at 4 sigma, as scipy.ndimage.gaussian_filter1d does by default).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from rungroup.view import View

#: The gaussian kernel is cut at this many sigmas.
GAUSSIAN_TRUNCATE = 4.0


def _finite(name: str) -> pl.Expr:
    return pl.col(name).is_finite().fill_null(False)


def ema_expression(name: str, weight: float, by: list[str]) -> pl.Expr:
    value = pl.col(name)
    finite = _finite(name)
    smoothed = (
        pl.when(finite)
        .then(value)
        .ewm_mean(alpha=1.0 - weight, adjust=True, ignore_nulls=True, min_samples=1)
        .over(by)
    )
    constant = (finite.all() & (value.min() == value.max())).over(by)
    return pl.when(constant | ~finite).then(value).otherwise(smoothed).alias(name)


def window_expression(name: str, points: int, by: list[str]) -> pl.Expr:
    value = pl.col(name)
    finite = _finite(name)
    smoothed = pl.when(finite).then(value).rolling_mean(points, center=True, min_samples=1).over(by)
    return pl.when(finite).then(smoothed).otherwise(value).alias(name)


def gaussian_numpy(
    segment: np.ndarray, x: np.ndarray, values: np.ndarray, sigma: float
) -> np.ndarray:
    """Gaussian smoothing of `values` within runs of equal `segment` (rows sorted by x)."""
    n = values.size
    finite = np.isfinite(values)
    weight0 = finite.astype(np.float64)
    clean = np.where(finite, values, 0.0)
    numerator = clean.copy()
    denominator = weight0.copy()
    reach = GAUSSIAN_TRUNCATE * sigma
    active = np.arange(max(n - 1, 0), dtype=np.int64)
    offset = 1
    while active.size:
        partner = active + offset
        inside = partner < n
        active, partner = active[inside], partner[inside]
        near = (segment[partner] == segment[active]) & (x[partner] - x[active] <= reach)
        active, partner = active[near], partner[near]
        if not active.size:
            break
        w = np.exp(-0.5 * ((x[partner] - x[active]) / sigma) ** 2)
        # every index occurs at most once in `active` and once in `partner` for one offset
        numerator[active] += w * clean[partner]
        denominator[active] += w * weight0[partner]
        numerator[partner] += w * clean[active]
        denominator[partner] += w * weight0[active]
        offset += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        smoothed = numerator / denominator
    return np.where(finite, smoothed, values)


def _segments(frame: pl.DataFrame, by: list[str]) -> np.ndarray:
    """An id per row that changes whenever a `by` value changes (the frame is sorted by `by`)."""
    if frame.height == 0:
        return np.zeros(0, dtype=np.int64)
    changed = np.zeros(frame.height, dtype=bool)
    changed[0] = True
    for name in by:
        column = frame[name].to_numpy()
        changed[1:] |= column[1:] != column[:-1]
    return np.cumsum(changed)


def smooth(frame: pl.DataFrame, columns: list[str], by: list[str], view: View) -> pl.DataFrame:
    """Smooth `columns` of `frame` (sorted by ``(*by, "x")``) within the groups `by`."""
    kind = view.smoothing
    param = view.smoothing_param
    if kind == "none" or frame.height == 0:
        return frame
    if kind == "ema":
        return frame.with_columns(ema_expression(c, param, by) for c in columns)
    if kind == "window":
        points = max(1, round(param))
        return frame.with_columns(window_expression(c, points, by) for c in columns)
    segment = _segments(frame, by)
    x = frame["x"].to_numpy()
    out = []
    for name in columns:
        values = frame[name].cast(pl.Float64).to_numpy()
        smoothed = gaussian_numpy(segment, x, values, param)
        series = pl.Series(name, smoothed, dtype=pl.Float64)
        # keep nulls null (they were NaN in numpy)
        out.append(pl.when(pl.col(name).is_null()).then(None).otherwise(series).alias(name))
    return frame.with_columns(out)
