"""The dense path's matrices: one metric's points as a (runs × grid) matrix, one row per
selected run and one column per step of the metric's grid (the steps any selected run logged it
at). Made from the history's points (`matrices_of`), cut to fewer runs (`rows_of`), extended by
appended points (`extended`), smoothed per run and bucketed (`derived`); `rungroup.engine.dense`
decides when and keeps them, `rungroup.engine.dense_stats` reduces them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from rungroup.engine.align import bin_index
from rungroup.engine.grouping import RUN_KEY, Grouping
from rungroup.engine.smoothing import smooth_values
from rungroup.engine.xaxis import categorical_codes, code_positions
from rungroup.runs import Runs
from rungroup.view import View

#: Steps beyond this are not exact as the grid's floats: an extension leaves them to
#: `dense.prepare`.
_EXACT_STEPS = 2**53


@dataclass(frozen=True)
class MetricMatrix:
    """One metric's points as a (runs × grid) matrix."""

    #: The grid: steps logged (exact), or the centres of the non-empty bins (bucket).
    x: np.ndarray
    #: (rows, len(x)): the run's finite value there (a bin: the mean of them), else NaN.
    values: np.ndarray
    #: Non-finite values left out per cell; None when there are none.
    dropped: np.ndarray | None
    #: Where the run logged (a bin: logged at least once); None when every run logged everywhere.
    present: np.ndarray | None
    #: Every run's present columns form one unbroken stretch.
    contiguous: bool


@dataclass(frozen=True, eq=False)
class Prepared:
    """The matrices of the selected metrics, one row per selected run (``_r``)."""

    matrices: tuple[MetricMatrix, ...]
    #: The categorical codes of the rows' runs (in ``_r`` order) and of the metrics.
    run_codes: np.ndarray
    metric_codes: np.ndarray
    #: Codes of the runs that logged the metrics but have no row (hidden, or not in the runs
    #: table): an extension that gives one of them a row would miss its earlier points.
    others: np.ndarray


@dataclass(frozen=True)
class Points:
    """The history's columns as read: categorical codes, not positions yet."""

    rc: np.ndarray  # run id codes
    mc: np.ndarray | None  # metric codes; None: one metric
    step: np.ndarray
    v: np.ndarray
    run_codes: np.ndarray  # the codes of the selected runs, in _r order
    metric_codes: np.ndarray  # the codes of the metrics, in their order
    n_runs: int


def _regular(points: Points) -> tuple[list[MetricMatrix], np.ndarray] | None:
    """Without scattering: every run's points are one block, and each block logs the same
    (metric, step) sequence, so the values reshape into a (runs × block) matrix. Returns the
    matrices and the codes of the runs without a row (`Prepared.others`)."""
    rc, mc, step, v = points.rc, points.mc, points.step, points.v
    run_codes, metric_codes, n_runs = points.run_codes, points.metric_codes, points.n_runs
    n = rc.size
    changes = np.flatnonzero(rc[1:] != rc[:-1]) + 1
    blocks = changes.size + 1
    if n % blocks:
        return None
    width = n // blocks
    if not np.array_equal(changes, np.arange(1, blocks, dtype=changes.dtype) * width):
        return None
    block_runs = code_positions(rc[::width], run_codes)
    wanted = block_runs >= 0
    # each selected run one block; the runs not selected (hidden) may be any number of blocks
    if np.unique(block_runs[wanted]).size != int(wanted.sum()):
        return None
    if mc is not None and not bool((mc.reshape(blocks, width) == mc[:width]).all()):
        return None
    if not bool((step.reshape(blocks, width) == step[:width]).all()):
        return None
    if int(wanted.sum()) != n_runs:  # a selected run that logged none of the metrics
        return None
    table = v.reshape(blocks, width)
    rows = np.argsort(block_runs[wanted])  # matrix rows in _r order
    take_rows = np.flatnonzero(wanted)[rows]
    in_order = bool(np.array_equal(take_rows, np.arange(blocks)))
    metric_of = (
        np.zeros(width, dtype=np.int64) if mc is None else code_positions(mc[:width], metric_codes)
    )
    out = []
    for index in range(metric_codes.size):
        columns = np.flatnonzero(metric_of == index)
        steps = step[:width][columns]
        if columns.size == 0 or not bool(np.all(steps[1:] > steps[:-1])):
            return None
        if columns[-1] - columns[0] + 1 == columns.size:  # a slice: a view, no copy
            values = table[:, columns[0] : columns[-1] + 1]
        else:
            values = table[:, columns]
        if not in_order:
            values = values[take_rows]
        out.append(_with_finite(steps.astype(np.float64), values, None))
    return out, np.unique(rc[::width][~wanted])


def _scattered(points: Points) -> tuple[list[MetricMatrix], np.ndarray] | None:
    """Any order: each point is written into its (metric, run, step) cell. Returns the
    matrices and the codes of the runs without a row (`Prepared.others`)."""
    rc, mc, step, v = points.rc, points.mc, points.step, points.v
    run_codes, metric_codes, n_runs = points.run_codes, points.metric_codes, points.n_runs
    r = code_positions(rc, run_codes)
    m = None if mc is None else code_positions(mc, metric_codes)
    keep = r >= 0
    others = np.unique(rc[~keep])
    if m is not None:
        keep &= m >= 0
    if not bool(keep.all()):
        r, step, v = r[keep], step[keep], v[keep]
        m = None if m is None else m[keep]
    n = r.size
    if n == 0:
        return None
    n_metrics = metric_codes.size
    low, high = int(step.min()), int(step.max())
    span = high - low + 1
    if not _steps_dense_enough(n_metrics * span, n):
        return None
    key = step - low
    if m is not None:
        key += m * span
    logged = np.bincount(key, minlength=n_metrics * span).reshape(n_metrics, span) > 0
    lengths = logged.sum(axis=1)
    offsets = np.concatenate(([0], np.cumsum(lengths * n_runs)[:-1]))
    # cell of a (metric, step): the metric's offset + the step's column in its grid
    column = np.cumsum(logged, axis=1) - 1
    cell_of_key = (column + offsets[:, None]).ravel()
    cell = cell_of_key[key]
    del key
    cell += r * (lengths[0] if m is None else lengths[m])
    total = int((lengths * n_runs).sum())
    if not _cells_dense_enough(total, n):
        return None
    present = np.zeros(total, dtype=bool)
    present[cell] = True
    if int(np.count_nonzero(present)) != n:  # some run logged a metric twice at one step
        return None
    values = np.full(total, np.nan)
    values[cell] = v
    out = []
    for index in range(n_metrics):
        grid = np.flatnonzero(logged[index]) + low
        if grid.size == 0:
            return None
        part = slice(int(offsets[index]), int(offsets[index] + lengths[index] * n_runs))
        shape = (n_runs, int(lengths[index]))
        cells = present[part].reshape(shape)
        out.append(
            _with_finite(
                grid.astype(np.float64),
                values[part].reshape(shape),
                None if bool(cells.all()) else cells,
            )
        )
    return out, others


def matrices_of(points: Points) -> tuple[list[MetricMatrix], np.ndarray] | None:
    """The matrices of `points` and the codes of the runs without a row (`Prepared.others`);
    None when they do not fit a grid."""
    found = _regular(points)
    return found if found is not None else _scattered(points)


def rows_of(every: Prepared, runs: Runs, grouping: Grouping) -> Prepared | None:
    """The matrices `prepare` makes for the runs of `grouping`, cut from `every`'s (made for
    a superset of them: the runs with none hidden): their rows, and only the grid steps they
    logged. None where `prepare` is needed (a run of `grouping` without a row there, a metric
    none of them logged)."""
    run_codes = categorical_codes(
        runs.history.collect_schema()["run_id"], grouping.runs[RUN_KEY].to_list()
    )
    if run_codes is None:
        return None
    rows = code_positions(run_codes, every.run_codes)
    if rows.size == 0 or bool((rows < 0).any()):
        return None
    matrices = []
    for matrix in every.matrices:
        x, values, dropped, present = matrix.x, matrix.values[rows], matrix.dropped, matrix.present
        dropped = None if dropped is None else dropped[rows]
        if present is not None:
            present = present[rows]
            logged = present.any(axis=0)
            if not bool(logged.all()):
                x, values, present = x[logged], values[:, logged], present[:, logged]
                dropped = None if dropped is None else dropped[:, logged]
            if bool(present.all()):
                present = None
        if x.size == 0:
            return None
        if dropped is not None and not bool(dropped.any()):
            dropped = None
        matrices.append(MetricMatrix(x, values, dropped, present, contiguous(present)))
    left_out = np.setdiff1d(every.run_codes, run_codes)
    others = np.union1d(every.others, left_out).astype(every.others.dtype, copy=False)
    return Prepared(tuple(matrices), run_codes, every.metric_codes, others)


def same_grids(made: Prepared, every: Prepared) -> bool:
    """Whether `made` (rows of `every`) kept every grid step of every metric."""
    return all(a.x.size == b.x.size for a, b in zip(made.matrices, every.matrices, strict=True))


def derived(made: Prepared, bins: int | None, smoothing: View | None) -> Prepared:
    """`made` with each run smoothed as `smoothing` says, then bucketed into `bins`."""
    if smoothing is None and bins is None:
        return made
    matrices = made.matrices
    if smoothing is not None:
        matrices = tuple(smoothed(matrix, smoothing) for matrix in matrices)
    if bins is not None:
        matrices = tuple(bucketed(matrix, bins) for matrix in matrices)
    return Prepared(matrices, made.run_codes, made.metric_codes, made.others)


def extended(
    base: Prepared,
    appended: tuple[pl.DataFrame, ...],
    runs: Runs,
    grouping: Grouping,
    metrics: list[str],
) -> Prepared | None:
    """`base` (kept for an earlier history) with the `appended` rows' points written in:
    what `rungroup.engine.dense.prepare` makes of the whole history, or None where they might
    differ from it."""
    schema = runs.history.collect_schema()
    run_codes = categorical_codes(schema["run_id"], grouping.runs[RUN_KEY].to_list())
    metric_codes = categorical_codes(schema["metric"], metrics)
    if run_codes is None or metric_codes is None:
        return None
    rows = appended[0] if len(appended) == 1 else pl.concat(appended)
    if (
        not np.array_equal(metric_codes, base.metric_codes)
        or rows.schema["run_id"] != schema["run_id"]
        or rows.schema["metric"] != schema["metric"]
        or rows["step"].null_count()
    ):
        return None
    old_rows = code_positions(base.run_codes, run_codes)
    if bool((old_rows < 0).any()) or bool(np.isin(base.others, run_codes).any()):
        return None  # a run left, or one with earlier points got a row
    rc = rows["run_id"].to_physical().to_numpy()
    m = code_positions(rows["metric"].to_physical().to_numpy(), metric_codes)
    step = rows["step"].to_numpy()
    r = code_positions(rc, run_codes)
    logged = m >= 0
    others = np.union1d(base.others, rc[logged & (r < 0)])
    keep = logged & (r >= 0)
    if bool(keep.any()) and int(np.abs(step[keep]).max()) >= _EXACT_STEPS:
        return None
    v = rows["value"].cast(pl.Float64).to_numpy()
    matrices = []
    for index, matrix in enumerate(base.matrices):
        mine = keep & (m == index)
        grown = _extend_matrix(matrix, old_rows, run_codes.size, r[mine], step[mine], v[mine])
        if grown is None:
            return None
        matrices.append(grown)
    if not _fits_a_grid(matrices):
        return None
    return Prepared(tuple(matrices), run_codes, metric_codes, others)


def _extend_matrix(
    matrix: MetricMatrix,
    old_rows: np.ndarray,
    n_rows: int,
    r: np.ndarray,
    step: np.ndarray,
    v: np.ndarray,
) -> MetricMatrix | None:
    """`matrix` (its rows moved to `old_rows` of `n_rows`) with the points (row `r`, `step`,
    value `v`) written into their cells, grown by the steps it lacks; None if a cell already
    holds a point (a step logged twice)."""
    if np.abs(matrix.x[[0, -1]]).max() >= _EXACT_STEPS:
        return None
    steps = step.astype(np.float64)
    new = np.unique(steps)
    if new.size == 0 or new[0] > matrix.x[-1]:  # the usual case: later steps
        grid = np.concatenate((matrix.x, new))
    else:
        grid = np.union1d(matrix.x, new)
    target = _cells_of(old_rows, np.searchsorted(grid, matrix.x))
    values = np.full((n_rows, grid.size), np.nan)
    values[target] = matrix.values
    present = np.zeros(values.shape, dtype=bool)
    present[target] = True if matrix.present is None else matrix.present
    bad = ~np.isfinite(v)
    dropped = None
    if matrix.dropped is not None or bool(bad.any()):
        dropped = np.zeros(values.shape, dtype=np.int64)
        if matrix.dropped is not None:
            dropped[target] = matrix.dropped
    cell = r * grid.size + np.searchsorted(grid, steps)
    before = int(np.count_nonzero(present))
    present.reshape(-1)[cell] = True
    filled = int(np.count_nonzero(present))
    if filled != before + cell.size:
        return None
    values.reshape(-1)[cell] = np.where(bad, np.nan, v)
    if dropped is not None:
        dropped.reshape(-1)[cell[bad]] = 1
    kept_present = None if filled == present.size else present
    return MetricMatrix(grid, values, dropped, kept_present, contiguous(kept_present))


def cells(made: Prepared) -> int:
    return sum(matrix.values.size for matrix in made.matrices)


def _cells_of(rows: np.ndarray, columns: np.ndarray) -> Any:
    """The index of the (rows × columns) cells: slices when both are the first rows and columns
    (the usual case, no new run sorted before an old one: copying slices is several times
    faster than gathering)."""
    if rows.size == 0 or columns.size == 0:
        return np.ix_(rows, columns)
    if rows[-1] == rows.size - 1 and columns[-1] == columns.size - 1:  # both ascend
        return slice(0, rows.size), slice(0, columns.size)
    return np.ix_(rows, columns)


def _fits_a_grid(matrices: list[MetricMatrix]) -> bool:
    """`_scattered`'s limits: the matrices it would make of these points (`_regular` may make
    them beyond the limits, so an extension past them is left to `prepare`)."""
    n_rows = matrices[0].values.shape[0]
    n = sum(
        m.values.size if m.present is None else int(np.count_nonzero(m.present)) for m in matrices
    )
    low = min(m.x[0] for m in matrices)
    high = max(m.x[-1] for m in matrices)
    span = int(high - low) + 1
    total = sum(m.x.size for m in matrices) * n_rows
    return _steps_dense_enough(len(matrices) * span, n) and _cells_dense_enough(total, n)


def _steps_dense_enough(metric_steps: int, points: int) -> bool:
    """Whether a grid of every step between the first and the last (per metric) is worth
    making for `points` points; else the steps are too sparse for it."""
    return metric_steps <= max(4 * points, 1 << 20)


def _cells_dense_enough(cells: int, points: int) -> bool:
    """Whether matrices of `cells` cells are worth making for `points` points; else the runs
    logged at too different steps and most cells would be empty."""
    return cells <= max(8 * points, 1 << 22)


def _with_finite(grid: np.ndarray, values: np.ndarray, present: np.ndarray | None) -> MetricMatrix:
    """A matrix with its non-finite values (logged, not missing) counted and made NaN."""
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.add.reduce(values, axis=None)
    dropped = None
    if not np.isfinite(total):  # a finite sum means every value is finite
        finite = np.isfinite(values)
        bad = ~finite if present is None else present & ~finite
        if bool(bad.any()):
            dropped = bad.astype(np.int64)
            values = np.where(finite, values, np.nan)
    return MetricMatrix(grid, values, dropped, present, contiguous(present))


def contiguous(present: np.ndarray | None) -> bool:
    if present is None:
        return True
    starts = present[:, :1].astype(np.int8).ravel()
    rises = (np.diff(present.astype(np.int8), axis=1) == 1).sum(axis=1)
    return bool(np.all(starts + rises <= 1))


def smoothed(matrix: MetricMatrix, view: View) -> MetricMatrix:
    """Each run's points (its present cells, in step order) smoothed as the general path
    smooths them: the same points through the same `smooth_values`."""
    rows, columns = matrix.values.shape
    if matrix.present is None:
        starts = np.arange(rows, dtype=np.int64) * columns
        x = np.tile(matrix.x, rows)
        values = smooth_values(starts, x, matrix.values.ravel(), view).reshape(rows, columns)
        return replace(matrix, values=values)
    row, column = np.nonzero(matrix.present)  # row-major: each run's points in step order
    counts = np.bincount(row, minlength=rows)
    starts = (np.cumsum(counts) - counts)[counts > 0]
    values = np.full((rows, columns), np.nan)
    values[row, column] = smooth_values(starts, matrix.x[column], matrix.values[row, column], view)
    return replace(matrix, values=values)


def bucketed(matrix: MetricMatrix, bins: int) -> MetricMatrix:
    """`bins` equal-width bins over the grid's range, as `align.bucket_arrays` makes them: a
    run's value in a bin is the mean of its finite values there."""
    grid = matrix.x
    low, high = grid[0], grid[-1]
    width = (high - low) / bins
    index = bin_index(grid, None, grid[:1], grid[-1:], bins)
    starts = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
    centre = low + (index[starts].astype(np.float64) + 0.5) * width if width > 0 else grid[starts]
    values = matrix.values
    if matrix.dropped is None and matrix.present is None:  # every cell a finite value
        means = np.add.reduceat(values, starts, axis=1)
        means /= np.diff(np.append(starts, grid.size))  # in place: no bin is empty here
    else:
        finite = ~np.isnan(values)
        sums = np.add.reduceat(np.where(finite, values, 0.0), starts, axis=1)
        counts = np.add.reduceat(finite.astype(np.int64), starts, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    dropped = None if matrix.dropped is None else np.add.reduceat(matrix.dropped, starts, axis=1)
    present = None
    if matrix.present is not None:
        present = np.add.reduceat(matrix.present.astype(np.int64), starts, axis=1) > 0
    return MetricMatrix(centre, means, dropped, present, contiguous(present))
