"""The dense path: runs logged at shared steps, aligned and reduced as matrices.

Most experiments log every metric of every run at the same steps, or at a stretch of them (a
run that stopped early, or is still running). Then the points of one metric fit a matrix: one
row per selected run, one column per step of the metric's grid (the steps any selected run
logged it at). Every alignment becomes a column operation, with the same results as the
general path (`align` + `statistics`):

- ``exact``: a run contributes where it logged;
- ``interpolate`` and ``auto``: when every run's columns are one unbroken stretch of the grid,
  a run is only ever interpolated at steps it logged, so they equal ``exact``; the dense path
  takes them only then;
- ``bucket``: a run's columns of one bin are summed (`np.add.reduceat`); the bins are those of
  `align.bucket_arrays`, computed the same way.

Smoothing before aggregation smooths each run's points (its present cells, in step order)
through the same `smoothing.smooth_values` as the general path, before any bucketing.

The statistics of the series are computed along the runs axis of (series × runs × points)
blocks, the series of one size and one set of kept columns at a time.

`prepare` (matrices from the history) does not depend on the grouping, so its result is kept
by the `Matrices` of the runs' `Workspace` (its caller owns it): a widget regrouping its runs
only redoes the reduction. The smoothed or bucketed matrices are kept apart, made from
the kept ones. Sums add in run order as in the general path, though not
always in the same association, so figures can differ from it in the last bits.

A live widget gets a new `Runs` at every poll, whose history is the previous one plus a few
appended rows. `Matrices.extended(after, appended)` carries the matrices kept for the previous
runs over to `after`; the next call for `after` writes the appended points into them (new
runs are new rows, new steps new columns) instead of reading the whole history again. The
result is the matrices `prepare` would make, exactly: wherever that is not certain (a run
left, a cell logged twice, a grid too sparse, ...) `prepare` makes them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from rungroup.engine.align import bin_index, cap_ranks
from rungroup.engine.grouping import RUN_KEY, Grouping
from rungroup.engine.smoothing import smooth_values
from rungroup.engine.stats import STAT_COLUMNS
from rungroup.engine.tdist import t_quantile
from rungroup.engine.xaxis import categorical_codes, code_positions
from rungroup.runs import Runs
from rungroup.view import View

#: Blocks reduced in threads when they hold at least this many cells in all.
_PARALLEL_CELLS = 1 << 17
#: Appended rows kept for matrices not read since (beyond their own size in cells).
_KEPT_ROWS = 1 << 20
#: Steps beyond this are not exact as the grid's floats: an extension leaves them to `prepare`.
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


#: Column slices of one `Prepared`'s matrices, by (metric, columns): see `_columns_of`.
Slices = OrderedDict[tuple[int, bytes], MetricMatrix]


@dataclass(frozen=True)
class _Pending:
    """Matrices kept for an earlier `Runs`, and the history rows appended since: made into
    the matrices of the `Runs` they are kept for when it is next aggregated."""

    base: Prepared
    rows: tuple[pl.DataFrame, ...]


def applies(view: View) -> bool:
    """Whether the dense path can compute this view (else the general path does)."""
    return view.x == "step" and view.ci_method == "t"


def _smooths_runs(view: View) -> bool:
    return view.smoothing != "none" and view.smooth_order == "before"


class Matrices:
    """The matrices prepared from one `Runs` (its `Workspace` owns them): the last few
    (x, metrics, hidden) combinations as read, what was made of them (per smoothing and bins),
    and the column slices of each. Hidden runs' combinations are cut from the one with none
    hidden when it is kept (`_rows_of`): a widget hiding a run does not read the history."""

    #: Combinations kept.
    SIZE = 6

    def __init__(self, runs: Runs) -> None:
        self.runs = runs
        self._kept: OrderedDict[tuple[Any, ...], Prepared | _Pending | None] = OrderedDict()
        self._slices: dict[tuple[Any, ...], Slices] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def clear(self) -> None:
        self._kept.clear()
        self._slices.clear()

    def prepared(
        self, view: View, grouping: Grouping, metrics: list[str]
    ) -> tuple[Prepared, Slices] | None:
        """The matrices for `view` (kept, or made now) and their kept slices; None if the
        layout does not fit. The matrices as read are kept apart from the smoothed or bucketed
        ones made of them, so a change of smoothing or of bins does not read the history
        again."""
        runs = self.runs
        read = (view.x, tuple(metrics), view.hidden)
        base = (*read, None, None)
        bins = view.points if view.align == "bucket" else None
        smoothing = view if _smooths_runs(view) else None
        made_of = (bins, None if smoothing is None else (view.smoothing, view.smoothing_param))
        # Hiding runs: the other runs' rows of the matrices made with none hidden, when those
        # are kept, instead of the history read again (and, when hiding left every grid step
        # some run's, of their smoothed or bucketed matrices too: the same bins)
        unhidden: tuple[Any, ...] = (view.x, tuple(metrics), frozenset())
        every = self._touched((*unhidden, None, None)) if view.hidden else None
        if base not in self._kept and every is not None:
            rows = _rows_of(every, runs, grouping)
            if rows is not None:
                self._keep(base, rows)
        if base in self._kept:
            self._kept.move_to_end(base)
            made = self._kept[base]
            if isinstance(made, _Pending):
                made = _extended(made, runs, grouping, metrics)
                if made is None:
                    made = prepare(runs, grouping, metrics, None)
                self._keep(base, made)
        else:
            made = prepare(runs, grouping, metrics, None)
            # kept even when None: a history that does not fit is not read again on the next call
            self._keep(base, made)
        if made is None:
            return None
        if bins is None and smoothing is None:
            return made, self._slices.setdefault(base, OrderedDict())
        key = (*read, *made_of)
        hit = self._kept.get(key)
        if isinstance(hit, Prepared):
            self._kept.move_to_end(key)
            return hit, self._slices.setdefault(key, OrderedDict())
        derived = None
        every_derived = self._touched((*unhidden, *made_of)) if every is not None else None
        if every is not None and every_derived is not None and _same_grids(made, every):
            derived = _rows_of(every_derived, runs, grouping)
        if derived is None:
            derived = _derived(made, bins, smoothing)
        self._keep(key, derived)
        return derived, self._slices.setdefault(key, OrderedDict())

    def _touched(self, key: tuple[Any, ...]) -> Prepared | None:
        """The matrices kept under `key`, marked as just used; None if none are."""
        made = self._kept.get(key)
        if not isinstance(made, Prepared):
            return None
        self._kept.move_to_end(key)
        return made

    def _keep(self, key: tuple[Any, ...], made: Prepared | _Pending | None) -> None:
        self._kept[key] = made
        self._slices.pop(key, None)  # slices of what was kept under this key before
        self._kept.move_to_end(key)
        while len(self._kept) > self.SIZE:
            dropped, _ = self._kept.popitem(last=False)
            self._slices.pop(dropped, None)

    def extended(self, after: Runs, appended: pl.DataFrame) -> Matrices:
        """The matrices for `after`, whose history is this one's followed by the rows
        `appended` (``run_id``, ``metric``, ``step``, ``value``), whatever runs it holds: the
        next call writes the appended points into the kept matrices instead of reading the
        whole history."""
        rows = appended.select("run_id", "metric", "step", "value")
        out = Matrices(after)
        for key, made in self._kept.items():
            if key[3:] != (None, None):
                continue  # bucketed or smoothed matrices cannot take more points: made again
            if isinstance(made, Prepared):
                pending = _Pending(made, (rows,))
            elif isinstance(made, _Pending):  # not aggregated since: both sets of rows
                pending = _Pending(made.base, (*made.rows, rows))
            else:
                continue
            if sum(part.height for part in pending.rows) > max(_cells(pending.base), _KEPT_ROWS):
                continue  # long unread: not worth keeping every row
            out._keep(key, pending)
        return out


def prepare(
    runs: Runs,
    grouping: Grouping,
    metrics: list[str],
    bins: int | None,
    smoothing: View | None = None,
) -> Prepared | None:
    """The selected runs' points of `metrics` at their steps, as matrices (each run smoothed
    as `smoothing` says, then bucketed into `bins`, when given). None when the history does
    not fit: run ids or metrics not categorical, a run logging a metric twice at one step, or
    steps too sparse for a grid."""
    history = runs.history
    schema = history.collect_schema()
    run_codes = categorical_codes(schema["run_id"], grouping.runs[RUN_KEY].to_list())
    metric_codes = categorical_codes(schema["metric"], metrics)
    if run_codes is None or metric_codes is None:
        return None
    selected = history
    if len(metrics) != len(runs.metrics):
        selected = history.filter(pl.col("metric").is_in(metrics))
    columns = [pl.col("run_id").to_physical().alias("r"), pl.col("step").alias("s")]
    if len(metrics) > 1:
        columns.append(pl.col("metric").to_physical().alias("m"))
    # the in-memory engine keeps the columns in one chunk each: numpy views, not copies
    raw = selected.select(*columns, pl.col("value").cast(pl.Float64).alias("v")).collect(
        engine="in-memory"
    )
    if raw.height == 0 or raw["s"].null_count():
        return None
    points = _Points(
        rc=raw["r"].to_numpy(),
        mc=raw["m"].to_numpy() if len(metrics) > 1 else None,
        step=raw["s"].to_numpy(),
        v=raw["v"].to_numpy(),
        run_codes=run_codes,
        metric_codes=metric_codes,
        n_runs=grouping.runs.height,
    )
    found = _regular(points)
    if found is None:
        found = _scattered(points)
    if found is None:
        return None
    matrices, others = found
    return _derived(Prepared(tuple(matrices), run_codes, metric_codes, others), bins, smoothing)


def _rows_of(every: Prepared, runs: Runs, grouping: Grouping) -> Prepared | None:
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
        matrices.append(MetricMatrix(x, values, dropped, present, _contiguous(present)))
    left_out = np.setdiff1d(every.run_codes, run_codes)
    others = np.union1d(every.others, left_out).astype(every.others.dtype, copy=False)
    return Prepared(tuple(matrices), run_codes, every.metric_codes, others)


def _same_grids(made: Prepared, every: Prepared) -> bool:
    """Whether `made` (rows of `every`) kept every grid step of every metric."""
    return all(a.x.size == b.x.size for a, b in zip(made.matrices, every.matrices, strict=True))


def _derived(made: Prepared, bins: int | None, smoothing: View | None) -> Prepared:
    """`made` with each run smoothed as `smoothing` says, then bucketed into `bins`."""
    if smoothing is None and bins is None:
        return made
    matrices = made.matrices
    if smoothing is not None:
        matrices = tuple(_smoothed(matrix, smoothing) for matrix in matrices)
    if bins is not None:
        matrices = tuple(_bucketed(matrix, bins) for matrix in matrices)
    return Prepared(matrices, made.run_codes, made.metric_codes, made.others)


@dataclass(frozen=True)
class _Points:
    """The history's columns as read: categorical codes, not positions yet."""

    rc: np.ndarray  # run id codes
    mc: np.ndarray | None  # metric codes; None: one metric
    step: np.ndarray
    v: np.ndarray
    run_codes: np.ndarray  # the codes of the selected runs, in _r order
    metric_codes: np.ndarray  # the codes of the metrics, in their order
    n_runs: int


def _regular(points: _Points) -> tuple[list[MetricMatrix], np.ndarray] | None:
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


def _scattered(points: _Points) -> tuple[list[MetricMatrix], np.ndarray] | None:
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


def _extended(
    pending: _Pending, runs: Runs, grouping: Grouping, metrics: list[str]
) -> Prepared | None:
    """The kept matrices with the appended points written in: what `prepare` makes of the
    whole history, or None where they might differ from it."""
    base = pending.base
    schema = runs.history.collect_schema()
    run_codes = categorical_codes(schema["run_id"], grouping.runs[RUN_KEY].to_list())
    metric_codes = categorical_codes(schema["metric"], metrics)
    if run_codes is None or metric_codes is None:
        return None
    rows = pending.rows[0] if len(pending.rows) == 1 else pl.concat(pending.rows)
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
    return MetricMatrix(grid, values, dropped, kept_present, _contiguous(kept_present))


def _cells(made: Prepared) -> int:
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
    return MetricMatrix(grid, values, dropped, present, _contiguous(present))


def _contiguous(present: np.ndarray | None) -> bool:
    if present is None:
        return True
    starts = present[:, :1].astype(np.int8).ravel()
    rises = (np.diff(present.astype(np.int8), axis=1) == 1).sum(axis=1)
    return bool(np.all(starts + rises <= 1))


def _smoothed(matrix: MetricMatrix, view: View) -> MetricMatrix:
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


def _bucketed(matrix: MetricMatrix, bins: int) -> MetricMatrix:
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
    return MetricMatrix(centre, means, dropped, present, _contiguous(present))


def usable(made: Prepared, view: View) -> bool:
    """Interpolation equals exact alignment only where runs logged unbroken stretches."""
    if view.align in ("exact", "bucket"):
        return True
    return all(matrix.contiguous for matrix in made.matrices)


_STATS_SCHEMA: dict[str, pl.DataType] = {
    "_s": pl.Int64(),
    "_m": pl.Int64(),
    "x": pl.Float64(),
    "n": pl.Int64(),
    "dropped": pl.Int64(),
    **{name: pl.Float64() for name in STAT_COLUMNS},
}
#: Null (not NaN) where fewer than two runs contribute.
_SPREADS = ("std", "stderr", "ci_low", "ci_high")
#: The statistics read off the runs sorted at each point (the sort is most of a reduction).
_ORDERED = frozenset(("median", "min", "max", "q_low", "q_high", "iqm"))


def statistics(
    made: Prepared,
    grouping: Grouping,
    view: View,
    wanted: frozenset[str] = frozenset(STAT_COLUMNS),
    *,
    slices: Slices | None = None,
    pool: Callable[[], Executor] | None = None,
) -> pl.DataFrame:
    """The rows of `stats.statistics` (n >= min_runs only), sorted by (_m, _s, x), with the
    statistics in `wanted` only (each the same numbers as when all are computed).

    `slices`: column slices of `made` kept from earlier calls (added to); `pool`: gives the
    threads big blocks are reduced in (none: one thread)."""
    schema = {
        name: dtype
        for name, dtype in _STATS_SCHEMA.items()
        if name not in STAT_COLUMNS or name in wanted
    }
    members = grouping.members
    member_runs = members["_r"].to_numpy()
    member_series = members["_s"].to_numpy()
    order = np.argsort(member_series, kind="stable")  # by series, then run (members are sorted)
    runs_sorted = member_runs[order]
    series, starts, sizes = np.unique(member_series[order], return_index=True, return_counts=True)
    tasks: list[tuple[int, MetricMatrix, np.ndarray, np.ndarray]] = []
    in_order = True  # blocks already in (metric, series) order: no sort needed
    for metric, matrix in enumerate(made.matrices):
        kept = _kept_columns(matrix, runs_sorted, starts, sizes, view)
        classes: dict[tuple[int, bytes], list[int]] = {}
        for position, columns in enumerate(kept):
            if columns.size:
                classes.setdefault((int(sizes[position]), columns.tobytes()), []).append(position)
        last_series = -1
        for (size, _), positions in classes.items():
            chosen = np.asarray(positions)
            in_order = in_order and int(series[chosen[0]]) > last_series
            last_series = int(series[chosen[-1]])
            sub = _columns_of(made, metric, kept[positions[0]], slices)
            # a big class is cut in two, so that its halves can be reduced in parallel
            big = chosen.size * size * sub.x.size >= 2 * _PARALLEL_CELLS
            for part in np.array_split(chosen, 2) if big and chosen.size > 1 else [chosen]:
                rows = runs_sorted[starts[part][:, None] + np.arange(size)[None, :]]
                tasks.append((metric, sub, rows, series[part]))
    t_cache: dict[int, float] = {}

    def reduce(task: tuple[int, MetricMatrix, np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
        metric, sub, rows, chosen_series = task
        piece = _block(sub, rows, view, t_cache, wanted)
        width = sub.x.size
        piece["_s"] = np.repeat(chosen_series, width)
        piece["_m"] = np.full(chosen_series.size * width, metric, dtype=np.int64)
        piece["x"] = np.tile(sub.x, chosen_series.size)
        keep = piece.pop("_exists") & (piece["n"] >= view.min_runs)
        if not bool(keep.all()):
            piece = {name: values[keep] for name, values in piece.items()}
        return piece

    cells = sum(task[2].size * task[1].x.size for task in tasks)
    # numpy lets go of the GIL while it sorts and sums: blocks reduce in parallel threads,
    # when they sort (sums alone are over before a thread has been handed its block)
    parallel = (
        pool is not None and len(tasks) > 1 and cells >= _PARALLEL_CELLS and bool(wanted & _ORDERED)
    )
    pieces = list(pool().map(reduce, tasks)) if pool and parallel else [reduce(t) for t in tasks]
    if not pieces:
        return pl.DataFrame(schema=schema)
    # one copy of each column: the big ones cost page faults on every new allocation
    frame = pl.DataFrame(
        [
            pl.Series(
                name,
                pieces[0][name] if len(pieces) == 1 else np.concatenate([p[name] for p in pieces]),
                dtype=dtype,
                nan_to_null=name in _SPREADS,
            )
            for name, dtype in schema.items()
        ]
    )
    if not in_order:  # series of one metric came class by class; x ascends within a series
        frame = frame.sort("_m", "_s", maintain_order=True)
    return frame


def _kept_columns(
    matrix: MetricMatrix,
    runs_sorted: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    view: View,
) -> list[np.ndarray]:
    """Per series, the grid columns it has points at: where any of its runs logged, capped
    to `view.points` evenly spread ranks (bins are never capped: there are `points` at most)."""
    width = matrix.x.size
    if matrix.present is None or view.align == "bucket":
        every = np.arange(width)
        if view.align != "bucket":
            every = every[cap_ranks(width, view.points)]
        return [every] * sizes.size
    logged = np.logical_or.reduceat(matrix.present[runs_sorted], starts, axis=0)
    kept = []
    for row in logged:
        columns = np.flatnonzero(row)
        kept.append(columns[cap_ranks(columns.size, view.points)])
    return kept


def _columns_of(
    made: Prepared, metric: int, columns: np.ndarray, slices: Slices | None
) -> MetricMatrix:
    """The matrix of `metric` at `columns` only. Slices are kept in `slices` (as many as fit
    in the matrices' own size), so that another grouping or view of the same runs, which
    mostly keeps the same columns, does not slice them again."""
    matrix = made.matrices[metric]
    if columns.size == matrix.x.size:
        return matrix
    key = (metric, columns.tobytes())
    sub = None if slices is None else slices.get(key)
    if sub is not None and slices is not None:
        slices.move_to_end(key)
        return sub
    sub = MetricMatrix(
        matrix.x[columns],
        matrix.values[:, columns],
        None if matrix.dropped is None else matrix.dropped[:, columns],
        None if matrix.present is None else matrix.present[:, columns],
        matrix.contiguous,
    )
    if slices is not None:
        slices[key] = sub
        budget = sum(_nbytes(m) for m in made.matrices)
        while sum(_nbytes(m) for m in slices.values()) > budget:
            slices.popitem(last=False)
    return sub


def _nbytes(matrix: MetricMatrix) -> int:
    return sum(a.nbytes for a in (matrix.values, matrix.dropped, matrix.present) if a is not None)


def _block(
    matrix: MetricMatrix,
    rows: np.ndarray,
    view: View,
    t_cache: dict[int, float],
    wanted: frozenset[str],
) -> dict[str, np.ndarray]:
    """The statistics of series whose runs are `rows` (series × runs) at every column of
    `matrix`, flattened series by series: n, dropped, the `wanted` statistics and ``_exists``
    (any run logged there)."""
    block = matrix.values[rows]
    shape = (rows.shape[0] * matrix.x.size,)
    # no NaN in the block (the usual case): every point has all its runs, n is one number
    with np.errstate(invalid="ignore", over="ignore"):
        full = (matrix.dropped is None and matrix.present is None) or not np.isnan(
            np.add.reduce(block, axis=None)
        )
    finite = None if full else ~np.isnan(block)
    n = np.full(block[:, 0, :].shape, rows.shape[1]) if finite is None else finite.sum(axis=1)
    if matrix.dropped is None:
        dropped = np.zeros(n.shape, dtype=np.int64)
    else:
        dropped = matrix.dropped[rows].sum(axis=1)
    if matrix.present is None:
        exists = np.ones(n.shape, dtype=bool)
    else:
        exists = matrix.present[rows].any(axis=1)
    out = {"n": n, "dropped": dropped, "_exists": exists}
    if rows.shape[1] == 1:
        value = block[:, 0, :]
        spread = np.full(value.shape, np.nan)
        for name in wanted:
            out[name] = spread if name in _SPREADS else value
        return {name: values.reshape(shape) for name, values in out.items()}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if wanted & _ORDERED:
            ordered = _order_statistics(block, block.shape[1] if finite is None else n, view)
            out.update((name, ordered[name]) for name in wanted & _ORDERED)
        mean = (block if finite is None else np.where(finite, block, 0.0)).sum(axis=1) / n
        if "mean" in wanted:
            out["mean"] = mean
        if not wanted & set(_SPREADS):
            return {name: values.reshape(shape) for name, values in out.items()}
        # in place where possible: every new block-sized array costs page faults
        deviation = block - mean[:, None, :]
        if finite is not None:
            deviation[~finite] = 0.0
        deviation *= deviation
        std = np.sqrt(deviation.sum(axis=1) / (n - 1))
        std = np.where(n >= 2, std, np.nan)
        stderr = std / np.sqrt(n)
        spreads = {"std": std, "stderr": stderr}
        if wanted & {"ci_low", "ci_high"}:
            sizes = np.flatnonzero(np.bincount(n.ravel()))
            t_of_size = np.full(int(sizes[-1]) + 1, np.nan)
            t_of_size[sizes] = [_t(int(size), view.ci_level, t_cache) for size in sizes]
            half = t_of_size[n] * stderr
            spreads.update(ci_low=mean - half, ci_high=mean + half)
        out.update((name, spreads[name]) for name in wanted & set(_SPREADS))
    return {name: values.reshape(shape) for name, values in out.items()}


def _order_statistics(block: np.ndarray, n: int | np.ndarray, view: View) -> dict[str, np.ndarray]:
    """Median, min, max, quantiles and IQM along the runs axis. `n`: the finite values per
    point, one number when the block has no NaN (then plain slices replace gathers)."""
    ordered = np.sort(block, axis=1)  # NaN last: ranks 0 .. n-1 are the finite values

    def rank(index: int | np.ndarray) -> np.ndarray:
        if isinstance(index, int):
            return ordered[:, max(index, 0), :]
        picked: np.ndarray = np.take_along_axis(ordered, np.maximum(index, 0)[:, None, :], axis=1)[
            :, 0, :
        ]
        return picked

    def quantile(q: float) -> np.ndarray:
        h = (n - 1) * q
        below = np.floor(h).astype(np.int64)
        low = rank(int(below) if isinstance(n, int) else below)
        high = rank(int(np.ceil(h)) if isinstance(n, int) else np.ceil(h).astype(np.int64))
        result: np.ndarray = low + (h - below) * (high - low)
        return result

    middle_low, middle_high = rank((n - 1) // 2), rank(n // 2)
    if isinstance(n, int):
        cut = n // 4
        iqm = ordered[:, cut : n - cut, :].sum(axis=1) / (n - 2 * cut)
    else:
        cuts = n // 4
        position = np.arange(block.shape[1])[None, :, None]
        inner = (position >= cuts[:, None, :]) & (position < (n - cuts)[:, None, :])
        iqm = np.where(inner, ordered, 0.0).sum(axis=1) / (n - 2 * cuts)
    low_q, high_q = view.quantiles
    return {
        "median": np.where(middle_low == middle_high, middle_low, (middle_low + middle_high) / 2.0),
        "min": ordered[:, 0, :],
        "max": rank(n - 1),
        "q_low": quantile(low_q),
        "q_high": quantile(high_q),
        "iqm": iqm,
    }


def _t(size: int, level: float, cache: dict[int, float]) -> float:
    if size < 2:
        return float("nan")
    if size not in cache:
        cache[size] = t_quantile((1.0 + level) / 2.0, float(size - 1))
    return cache[size]
