"""Smoothing of series: TensorBoard's debiased EMA, a centred window, a gaussian in x units.

Every smoother works on the points of one series in x order and treats non-finite values (NaN,
±inf, null) alike: they are passed through unchanged, and they take no part in smoothing their
neighbours. `smooth_values(starts, x, values, view)` smooths flat arrays whose series follow
one another (each from its start); `smooth(frame, columns, by, view)` smooths each of `columns`
within the groups `by` of a frame sorted by ``(*by, "x")``. The general path and the dense path
both smooth through `smooth_values`, so they smooth a run to the same numbers.

- ``ema`` (weight w in [0, 0.999]): TensorBoard's ``resmoothDataset``. With
  ``last_0 = 0`` and ``k`` counting the finite values seen so far,
  ``last_k = w·last_{k-1} + (1 - w)·v``, smoothed ``= last_k / (1 - w^k)``. A series whose
  values all equal the first (IEEE comparison, so any NaN makes it non-constant) is returned
  unchanged. This equals the adjusted exponentially weighted mean with ``alpha = 1 - w`` over the
  finite values. Many series at once run the recurrence down the columns of a (series ×
  points) table; otherwise Polars computes that mean (``ewm_mean(adjust=True)``) per series.
- ``window`` (k points): the mean of the finite values among the k points around each point:
  indexes ``i - k//2`` to ``i + (k-1)//2``, shrinking at the ends.
- ``gaussian`` (sigma in x units, seconds for a timestamp): the mean of the finite values
  weighted by ``exp(-(x_j - x_i)^2 / (2 sigma^2))`` over the points with
  ``|x_j - x_i| <= 4 sigma`` (the kernel is cut at 4 sigma, as scipy.ndimage.gaussian_filter1d
  does by default).

The window and, on evenly spaced x, the gaussian are sums over a fixed kernel: one
`np.convolve` over all series laid end to end, kept apart by zeros, adds every window afresh
(no running sum whose rounding would carry from one window to the next). A series with uneven
x spacing is smoothed pair by pair.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import polars as pl

from rungroup.engine.xaxis import TIMESTAMP_UNITS_PER_SECOND
from rungroup.view import View

#: The gaussian kernel is cut at this many sigmas.
GAUSSIAN_TRUNCATE = 4.0


def smooth(frame: pl.DataFrame, columns: list[str], by: list[str], view: View) -> pl.DataFrame:
    """Smooth `columns` of `frame` (sorted by ``(*by, "x")``) within the groups `by`."""
    if view.smoothing == "none" or frame.height == 0:
        return frame
    starts = _starts(frame, by)
    x = frame["x"].cast(pl.Float64).to_numpy()
    out = []
    for name in columns:
        smoothed = smooth_values(starts, x, frame[name].cast(pl.Float64).to_numpy(), view)
        series = pl.Series(name, smoothed, dtype=pl.Float64)
        # nulls stay null (numpy saw them as NaN)
        out.append(pl.when(pl.col(name).is_null()).then(None).otherwise(series).alias(name))
    return frame.with_columns(out)


def smooth_values(starts: np.ndarray, x: np.ndarray, values: np.ndarray, view: View) -> np.ndarray:
    """`values` smoothed within each series, the points from one of the ascending `starts` to
    the next (each series in x order); non-finite values come back unchanged."""
    if view.smoothing == "none" or values.size == 0:
        return values
    layout = _Layout(starts, values.size)
    if view.smoothing == "ema":
        return _ema(layout, values, view.smoothing_param)
    if view.smoothing == "window":
        k = max(1, round(view.smoothing_param))
        return _convolved(layout, values, np.ones(k), back=k // 2)
    # x holds a timestamp in microseconds; sigma is then given in seconds
    scale = TIMESTAMP_UNITS_PER_SECOND if view.x == "timestamp" else 1.0
    return _gaussian(layout, x, values, view.smoothing_param * scale)


class _Layout:
    """Where each series starts and which series each point belongs to."""

    def __init__(self, starts: np.ndarray, size: int) -> None:
        self.starts = starts
        self.lengths = np.diff(np.append(starts, size))

    @cached_property
    def index(self) -> np.ndarray:
        """The series of each point."""
        return np.repeat(np.arange(self.starts.size), self.lengths)

    def subset(self, series: np.ndarray) -> tuple[_Layout, np.ndarray | None]:
        """The layout of the chosen series alone, and the positions of their points (None:
        every series is chosen)."""
        if series.size == self.starts.size:
            return self, None
        keep = np.zeros(self.starts.size, dtype=bool)
        keep[series] = True
        points = np.flatnonzero(keep[self.index])
        lengths = self.lengths[series]
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        return _Layout(starts, int(lengths.sum())), points


#: The EMA runs down the columns of a (series × points) table when it has at least this many
#: series per column on average (each column is one numpy step) and padding the shorter
#: series at most doubles it; otherwise Polars runs it series by series.
_EMA_ROWS = 32


def _ema(layout: _Layout, values: np.ndarray, weight: float) -> np.ndarray:
    finite = np.isfinite(values)
    longest = int(layout.lengths.max())
    cells = longest * layout.starts.size
    if longest * _EMA_ROWS <= values.size and cells <= 2 * values.size:
        smoothed = _ema_by_columns(layout, values, weight, longest)
    else:
        frame = pl.DataFrame(
            {
                "s": layout.index,
                "v": pl.Series(np.where(finite, values, np.nan), nan_to_null=True),
            }
        )
        smoothed = frame.select(
            pl.col("v")
            .ewm_mean(alpha=1.0 - weight, adjust=True, ignore_nulls=True, min_samples=1)
            .over("s")
        )["v"].to_numpy()
    # a series of one repeated finite value is left as it is, as TensorBoard does (a NaN
    # makes the minimum NaN, so such a series is not constant)
    lowest = np.minimum.reduceat(values, layout.starts)
    with np.errstate(invalid="ignore"):
        constant = np.isfinite(lowest) & (lowest == np.maximum.reduceat(values, layout.starts))
    return np.where(finite & ~constant[layout.index], smoothed, values)


def _ema_by_columns(layout: _Layout, values: np.ndarray, weight: float, longest: int) -> np.ndarray:
    """TensorBoard's recurrence for every series at once, one point index (a column of the
    series × points table) at a time. The table is read and written in place, column by
    column: no transposed copies (fresh memory costs page faults)."""
    rows = layout.starts.size
    even = bool((layout.lengths == longest).all())
    if even:
        table = values.reshape(rows, longest)
    else:  # shorter series padded with NaN, which the recurrence skips
        column = np.arange(values.size) - np.repeat(layout.starts, layout.lengths)
        table = np.full((rows, longest), np.nan)
        table[layout.index, column] = values
    ok = np.isfinite(table)
    last = np.zeros(rows)
    step = np.empty(rows)
    out = np.empty((rows, longest))
    if ok.all():  # the same operations with every value seen: fewer of them per index
        power = 1.0
        for index in range(longest):
            last *= weight
            np.multiply(table[:, index], 1.0 - weight, out=step)
            last += step
            power *= weight
            np.divide(last, 1.0 - power, out=out[:, index])
    else:
        decay = np.ones(rows)  # weight ** (finite values seen)
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 before a first value
            for index in range(longest):
                seen = ok[:, index]
                np.multiply(last, weight, out=step)
                step += (1.0 - weight) * np.where(seen, table[:, index], 0.0)
                np.copyto(last, step, where=seen)
                np.multiply(decay, weight, out=step)
                np.copyto(decay, step, where=seen)
                np.subtract(1.0, decay, out=step)
                np.divide(last, step, out=out[:, index])
    smoothed: np.ndarray = out.ravel() if even else out[layout.index, column]
    return smoothed


def _convolved(layout: _Layout, values: np.ndarray, kernel: np.ndarray, back: int) -> np.ndarray:
    """Each finite value replaced by the `kernel`-weighted mean of the finite values from
    `back` points before it to ``len(kernel) - 1 - back`` after it, within its series."""
    finite = np.isfinite(values)
    if finite.all():
        numerator = _window_sums(layout, values, kernel, back)
        # every series of one length: the weights of a window depend on the position only
        if layout.lengths.min() == layout.lengths.max():
            one = _Layout(np.zeros(1, dtype=np.int64), int(layout.lengths[0]))
            weights = _window_sums(one, np.ones(one.lengths[0]), kernel, back)
            means: np.ndarray = numerator.reshape(-1, weights.size) / weights
            return means.ravel()
        sums: np.ndarray = numerator / _window_sums(layout, np.ones(values.size), kernel, back)
        return sums
    numerator = _window_sums(layout, np.where(finite, values, 0.0), kernel, back)
    denominator = _window_sums(layout, finite.astype(np.float64), kernel, back)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, numerator / denominator, values)


def _window_sums(layout: _Layout, values: np.ndarray, kernel: np.ndarray, back: int) -> np.ndarray:
    """Per point, ``sum(kernel[u] · values[i - back + u])`` over the points of its series."""
    forward = kernel.size - 1 - back
    # the series laid end to end, each after `gap` zeros, so that no kernel reaches from one
    # into the next
    gap = max(back, forward, 0)
    lengths = layout.lengths
    if lengths.min() == lengths.max():  # rows of a matrix: no point moved one by one
        rows, length = lengths.size, int(lengths[0])
        padded = np.zeros(rows * (gap + length) + gap)
        padded[: rows * (gap + length)].reshape(rows, gap + length)[:, gap:] = values.reshape(
            rows, length
        )
        position = None
    else:
        position = np.arange(values.size) + gap * (layout.index + 1)
        padded = np.zeros(values.size + gap * (lengths.size + 1))
        padded[position] = values
    # np.convolve's "full" output at j sums kernel[u] · a[j - (width - 1) + u] (flipped
    # kernel): a point's window ends at j = its position + forward
    full = np.convolve(padded, kernel[::-1])
    if position is None:
        start = gap + forward
        window = full[start : start + rows * (gap + length)].reshape(rows, gap + length)
        return window[:, :length].ravel()
    ends: np.ndarray = full[position + forward]
    return ends


def _gaussian(layout: _Layout, x: np.ndarray, values: np.ndarray, sigma: float) -> np.ndarray:
    """Series with evenly spaced x by convolution (one kernel per spacing), others pair by
    pair."""
    reach = GAUSSIAN_TRUNCATE * sigma
    spacing = _even_spacing(layout, x)
    out: np.ndarray = values.copy()
    for step in np.unique(spacing[spacing > 0]):  # NaN: uneven; 0: a single point, kept
        part, points = layout.subset(np.flatnonzero(spacing == step))
        # the farthest neighbour: k steps with k · step <= reach as the pairs compare it
        longest = int(part.lengths.max()) - 1
        offsets = min(int(reach // step), longest)
        while offsets > 0 and offsets * step > reach:
            offsets -= 1
        while offsets < longest and (offsets + 1) * step <= reach:
            offsets += 1
        if offsets <= 0:  # no neighbour within reach: every value is its own mean
            continue
        distances = np.arange(-offsets, offsets + 1) * step
        kernel = np.exp(-0.5 * (distances / sigma) ** 2)
        if points is None:
            return _convolved(part, values, kernel, back=offsets)
        out[points] = _convolved(part, values[points], kernel, back=offsets)
    uneven = np.flatnonzero(np.isnan(spacing) & (layout.lengths > 1))
    if uneven.size:
        part, points = layout.subset(uneven)
        selected = slice(None) if points is None else points
        out[selected] = _gaussian_pairs(part, x[selected], values[selected], sigma)
    return out


def _even_spacing(layout: _Layout, x: np.ndarray) -> np.ndarray:
    """Per series, the step between its successive x values if they are all one positive step
    apart (exactly), else NaN; 0 for a series of one point."""
    starts, lengths = layout.starts, layout.lengths
    spacing = np.zeros(starts.size)
    if x.size < 2:
        return spacing
    step = np.diff(x)
    inner = layout.index[1:] == layout.index[:-1]
    several = lengths > 1
    first = np.full(starts.size, np.nan)
    first[several] = step[starts[several]]
    uneven = inner & (step != first[layout.index[:-1]])
    spacing[several] = first[several]
    spacing[np.unique(layout.index[:-1][uneven])] = np.nan
    spacing[several & ~(first > 0)] = np.nan
    return spacing


def _gaussian_pairs(layout: _Layout, x: np.ndarray, values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of series in x order, for any spacing: the pairs of points `offset`
    apart, one offset after the other until no pair is within reach. Every array of a pass is
    written into buffers made once (fresh 10 M-point temporaries would cost page faults)."""
    n = values.size
    finite = np.isfinite(values)
    every = bool(finite.all())
    weight0 = finite.astype(np.float64)
    clean = values if every else np.where(finite, values, 0.0)
    numerator = clean.copy()
    denominator = weight0.copy()
    reach = GAUSSIAN_TRUNCATE * sigma
    # points from each one to the end of its series: a pair (i, i + offset) is inside one
    # series when offset < room[i]
    room = np.repeat(layout.starts + layout.lengths, layout.lengths) - np.arange(n)
    buffers = np.empty((3, n))
    out_of_reach = np.empty(n, dtype=bool)
    outside = np.empty(n, dtype=bool)
    for offset in range(1, n):
        size = n - offset
        distance, weight, product = (buffer[:size] for buffer in buffers)
        skipped, apart = out_of_reach[:size], outside[:size]
        np.subtract(x[offset:], x[:size], out=distance)
        np.greater(distance, reach, out=skipped)
        np.less_equal(room[:size], offset, out=apart)
        skipped |= apart
        if skipped.all():  # x is sorted within a series: no later offset has a pair either
            break
        np.divide(distance, sigma, out=weight)
        np.square(weight, out=weight)
        weight *= -0.5
        np.exp(weight, out=weight)
        weight[skipped] = 0.0
        np.multiply(weight, clean[offset:], out=product)
        numerator[:size] += product
        np.multiply(weight, clean[:size], out=product)
        numerator[offset:] += product
        if every:
            denominator[:size] += weight
            denominator[offset:] += weight
        else:
            np.multiply(weight, weight0[offset:], out=product)
            denominator[:size] += product
            np.multiply(weight, weight0[:size], out=product)
            denominator[offset:] += product
    with np.errstate(invalid="ignore", divide="ignore"):
        smoothed = numerator / denominator
    return np.where(finite, smoothed, values)


def _starts(frame: pl.DataFrame, by: list[str]) -> np.ndarray:
    """The rows where a `by` value changes (the frame is sorted by `by`), and the first."""
    changed = np.zeros(frame.height, dtype=bool)
    changed[0] = True
    for name in by:
        column = frame[name].to_numpy()
        changed[1:] |= column[1:] != column[:-1]
    return np.flatnonzero(changed)
