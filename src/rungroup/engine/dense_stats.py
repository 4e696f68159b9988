"""The dense path's statistics: those of `rungroup.engine.stats`, computed along the runs axis
of (series × runs × points) blocks of the matrices (`rungroup.engine.dense_matrix`), the series
of one size and one set of kept columns at a time."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np
import polars as pl

from rungroup.engine.align import cap_ranks
from rungroup.engine.dense_matrix import MetricMatrix, Prepared
from rungroup.engine.grouping import Grouping
from rungroup.engine.stats import STAT_COLUMNS
from rungroup.engine.tdist import t_quantile
from rungroup.view import View

#: Blocks reduced in threads when they hold at least this many cells in all.
_PARALLEL_CELLS = 1 << 17


#: Column slices of one `Prepared`'s matrices, by (metric, columns): see `_columns_of`.
Slices = OrderedDict[tuple[int, bytes], MetricMatrix]


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
