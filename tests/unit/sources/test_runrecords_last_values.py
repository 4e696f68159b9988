"""`runrecords.last_values`: each run's summary of a metric is the value at its largest step,
the last logged of those; checked against a pandas stable sort on random histories (steps
repeated, logged out of order, NaN values, null steps) and on the common in-order case that
takes the fast path alone."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rungroup.sources.runrecords import last_values


def _history(rows: list[tuple[int, int, int | None, float]]) -> pl.DataFrame:
    run, metric, step, value = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pl.DataFrame(
        {
            "run_id": pl.Series([f"r{r}" for r in run], dtype=pl.Categorical),
            "metric": pl.Series([f"m{m}" for m in metric], dtype=pl.Categorical),
            "step": pl.Series(step, dtype=pl.Int64),
            "value": pl.Series(value, dtype=pl.Float64),
        }
    )


def _reference(rows: list[tuple[int, int, int | None, float]]) -> dict[tuple[str, str], float]:
    """pandas: rows with a step, stably sorted by step within each series; the last row."""
    frame = pd.DataFrame(rows, columns=["run", "metric", "step", "value"])
    frame = frame[frame["step"].notna()]
    frame = frame.sort_values("step", kind="stable")
    last = frame.groupby(["run", "metric"], sort=False).tail(1)
    columns = zip(last["run"], last["metric"], last["value"], strict=True)
    return {(f"r{r}", f"m{m}"): v for r, m, v in columns}


def _got(wide: pl.DataFrame) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for row in wide.iter_rows(named=True):
        for column, value in row.items():
            if column != "id" and value is not None:
                out[(row["id"], column.removeprefix("summary."))] = value
    return out


def _same(a: dict[tuple[str, str], float], b: dict[tuple[str, str], float]) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a
    )


rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 2),
        st.one_of(st.integers(-3, 6), st.none()),
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(math.nan)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(rows_strategy)
def test_last_value_at_the_largest_step_equals_a_stable_sort(
    rows: list[tuple[int, int, int | None, float]],
) -> None:
    got = _got(last_values(_history(rows)))
    # A series whose steps are all null has no value (the filter finds no row), as before
    assert _same(got, _reference(rows))


def test_in_order_histories_and_a_late_smaller_step() -> None:
    rng = np.random.default_rng(3)
    rows: list[tuple[int, int, int | None, float]] = [
        (r, m, s, float(rng.normal())) for r in range(50) for s in range(40) for m in range(4)
    ]
    # run 7's m1 logs step 5 again after step 39: the summary stays the value at step 39
    rows.append((7, 1, 5, 123.0))
    # run 8's m2 logs its last step twice: the later one wins
    rows.append((8, 2, 39, -1.0))
    wide = last_values(_history(rows))
    assert wide.height == 50
    assert wide.columns == ["id", "summary.m0", "summary.m1", "summary.m2", "summary.m3"]
    got = _got(wide)
    assert _same(got, _reference(rows))
    assert got[("r8", "m2")] == -1.0
    assert got[("r7", "m1")] != 123.0


@pytest.mark.parametrize("steps", [[None, None], [2, None], [None, 2]])
def test_null_steps(steps: list[int | None]) -> None:
    rows: list[tuple[int, int, int | None, float]] = [
        (0, 0, s, float(i)) for i, s in enumerate(steps)
    ]
    rows.append((1, 0, 1, 5.0))
    assert _same(_got(last_values(_history(rows))), _reference(rows))
