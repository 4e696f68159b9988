"""Each run's last logged value of each metric (the engine's one implementation of it).

The last value of a (run, metric) is its value at its largest step; of several values logged
at that step, the last logged; a null step counts as the smallest. Kept as numpy arrays by the
history's categorical codes (`LastValues`), so that merging a live poll's appended rows costs
one sort of them and no query. `final_values` makes them a frame, one row per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from rungroup.engine.xaxis import categorical_codes, code_positions
from rungroup.runs import Runs


@dataclass(frozen=True)
class LastValues:
    """Each (run, metric)'s largest step and its value there (the last logged of several at
    that step), by the history's categorical codes: numpy arrays, so that merging a poll's
    appended rows costs one sort of them and no query (a live widget does it every poll)."""

    run: np.ndarray
    metric: np.ndarray
    #: the step (null: the smallest step, as a sort puts it first)
    step: np.ndarray
    value: np.ndarray
    #: False where the value is null
    valid: np.ndarray


_NULL_STEP = np.iinfo(np.int64).min


def extend(last: LastValues | None, rows: pl.LazyFrame) -> LastValues:
    """`LastValues` of the history `rows`, or of `last`'s history followed by `rows`."""
    frame = (
        rows.select(
            pl.col("run_id").cast(pl.Categorical()).to_physical(),
            pl.col("metric").cast(pl.Categorical()).to_physical(),
            pl.col("step").fill_null(_NULL_STEP),
            pl.col("value").cast(pl.Float64),
            pl.col("value").is_not_null().alias("valid"),
        )
        .drop_nulls(["run_id", "metric"])  # not a point of any run's metric
        .collect()
    )
    columns = [frame[name].to_numpy() for name in ("run_id", "metric", "step", "value", "valid")]
    if last is not None:
        # `last` first: at an equal step the appended row, logged later, wins
        old = (last.run, last.metric, last.step, last.value, last.valid)
        columns = [np.concatenate((a, b)) for a, b in zip(old, columns, strict=True)]
    run, metric, step, value, valid = columns
    order = np.lexsort((step, metric, run))  # stable: rows at one step stay in logged order
    run, metric = run[order], metric[order]
    ends = np.flatnonzero(np.append((run[1:] != run[:-1]) | (metric[1:] != metric[:-1]), True))
    if run.size == 0:
        ends = ends[:0]
    picked = order[ends]
    return LastValues(run[ends], metric[ends], step[picked], value[picked], valid[picked])


def _codes(names: list[str]) -> np.ndarray:
    codes = categorical_codes(pl.Categorical(), names)
    assert codes is not None  # the dtype is categorical
    return codes


def final_values(runs: Runs, last: LastValues | None = None, *, prefix: str = "") -> pl.DataFrame:
    """Each run's last value of each metric: ``id`` and one Float64 column per metric
    (named `prefix` + the metric), null where the run logged none or its last value is null.
    `last`: the runs' `LastValues`, when kept (else read from the whole history)."""
    if last is None:
        last = extend(None, runs.history)
    base = runs.runs.select("id")
    metrics = runs.metrics
    if last.run.size == 0 or not metrics:
        return base
    rows = code_positions(last.run, _codes(runs.ids))
    columns = code_positions(last.metric, _codes(metrics))
    keep = (rows >= 0) & (columns >= 0)
    rows, columns = rows[keep], columns[keep]
    table = np.full((len(metrics), base.height), np.nan)
    table[columns, rows] = last.value[keep]
    missing = np.ones(table.shape, dtype=bool)
    missing[columns, rows] = ~last.valid[keep]
    return base.with_columns(
        pl.Series(f"{prefix}{name}", table[i]).scatter(np.flatnonzero(missing[i]), None)
        for i, name in enumerate(metrics)
    )
