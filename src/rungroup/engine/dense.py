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

The matrices are made in `rungroup.engine.dense_matrix`; the statistics of the series are
computed along their runs axis in `rungroup.engine.dense_stats`. This module decides when the
dense path applies, and reads and keeps the matrices.

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
from dataclasses import dataclass
from typing import Any

import polars as pl

from rungroup.engine.dense_matrix import (
    Points,
    Prepared,
    cells,
    derived,
    extended,
    matrices_of,
    rows_of,
    same_grids,
)
from rungroup.engine.dense_stats import Slices
from rungroup.engine.grouping import RUN_KEY, Grouping
from rungroup.engine.xaxis import categorical_codes
from rungroup.runs import Runs
from rungroup.view import View

#: Appended rows kept for matrices not read since (beyond their own size in cells).
_KEPT_ROWS = 1 << 20


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


def usable(made: Prepared, view: View) -> bool:
    """Interpolation equals exact alignment only where runs logged unbroken stretches."""
    if view.align in ("exact", "bucket"):
        return True
    return all(matrix.contiguous for matrix in made.matrices)


class Matrices:
    """The matrices prepared from one `Runs` (its `Workspace` owns them): the last few
    (x, metrics, hidden) combinations as read, what was made of them (per smoothing and bins),
    and the column slices of each. Hidden runs' combinations are cut from the one with none
    hidden when it is kept (`rows_of`): a widget hiding a run does not read the history."""

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
            rows = rows_of(every, runs, grouping)
            if rows is not None:
                self._keep(base, rows)
        if base in self._kept:
            self._kept.move_to_end(base)
            made = self._kept[base]
            if isinstance(made, _Pending):
                made = extended(made.base, made.rows, runs, grouping, metrics)
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
        result = None
        every_derived = self._touched((*unhidden, *made_of)) if every is not None else None
        if every is not None and every_derived is not None and same_grids(made, every):
            result = rows_of(every_derived, runs, grouping)
        if result is None:
            result = derived(made, bins, smoothing)
        self._keep(key, result)
        return result, self._slices.setdefault(key, OrderedDict())

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
            if sum(part.height for part in pending.rows) > max(cells(pending.base), _KEPT_ROWS):
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
    points = Points(
        rc=raw["r"].to_numpy(),
        mc=raw["m"].to_numpy() if len(metrics) > 1 else None,
        step=raw["s"].to_numpy(),
        v=raw["v"].to_numpy(),
        run_codes=run_codes,
        metric_codes=metric_codes,
        n_runs=grouping.runs.height,
    )
    found = matrices_of(points)
    if found is None:
        return None
    matrices, others = found
    return derived(Prepared(tuple(matrices), run_codes, metric_codes, others), bins, smoothing)
