"""`runrecords.last_values`: each run's summary of a metric is the value at its largest step,
the last logged of those; checked against a pandas stable sort on random histories (steps
repeated, logged out of order, NaN values, null steps), through both ways of finding them:
numpy slots for categorical names (what `assemble` passes) and Polars' group-by for the rest
(text names, null steps, names too spread out to index)."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rungroup.sources import runrecords
from rungroup.sources.runrecords import last_values

Rows = list[tuple[int, int, int | None, float]]


def _history(
    rows: Rows, names: type[pl.DataType] = pl.Categorical, prefix: str = ""
) -> pl.DataFrame:
    run, metric, step, value = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pl.DataFrame(
        {
            "run_id": pl.Series([f"{prefix}r{r}" for r in run], dtype=names),
            "metric": pl.Series([f"{prefix}m{m}" for m in metric], dtype=names),
            "step": pl.Series(step, dtype=pl.Int64),
            "value": pl.Series(value, dtype=pl.Float64),
        }
    )


def _reference(rows: Rows, prefix: str = "") -> dict[tuple[str, str], float]:
    """pandas: rows with a step, stably sorted by step within each series; the last row."""
    frame = pd.DataFrame(rows, columns=["run", "metric", "step", "value"])
    frame = frame[frame["step"].notna()]
    frame = frame.sort_values("step", kind="stable")
    last = frame.groupby(["run", "metric"], sort=False).tail(1)
    columns = zip(last["run"], last["metric"], last["value"], strict=True)
    return {(f"{prefix}r{r}", f"{prefix}m{m}"): v for r, m, v in columns}


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


@pytest.fixture
def numpy_path(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Which way each `last_values` call took (True: numpy slots)."""
    taken: list[bool] = []
    slots, groups = runrecords._last_rows, runrecords._last_by_group

    def by_slots(history: pl.DataFrame) -> pl.DataFrame | None:
        found = slots(history)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(runrecords, "_last_rows", by_slots)
    monkeypatch.setattr(runrecords, "_last_by_group", groups)
    return taken


@settings(max_examples=300, deadline=None)
@given(rows_strategy, st.sampled_from([pl.Categorical, pl.String]))
def test_last_value_at_the_largest_step_equals_a_stable_sort(
    rows: Rows, names: type[pl.DataType]
) -> None:
    got = _got(last_values(_history(rows, names)))
    # A series whose steps are all null has no value (the filter finds no row), as before
    assert _same(got, _reference(rows))


def test_categorical_names_take_numpy_slots_and_nulls_do_not(numpy_path: list[bool]) -> None:
    rows: Rows = [
        (r, m, s, float(r * 100 + s)) for r in range(3) for s in (2, 0, 2) for m in (0, 1)
    ]
    assert _same(_got(last_values(_history(rows))), _reference(rows))
    assert _same(_got(last_values(_history(rows, pl.String))), _reference(rows))
    with_null: Rows = [*rows, (0, 0, None, 1.5)]
    assert _same(_got(last_values(_history(with_null))), _reference(with_null))
    assert numpy_path == [True, False, False]


def test_names_numbered_far_apart_are_renumbered(numpy_path: list[bool]) -> None:
    # Polars numbers every categorical name alive in the process: make this history's large
    elsewhere = pl.Series([f"elsewhere-{i}" for i in range(150_000)], dtype=pl.Categorical)
    rng = np.random.default_rng(5)
    rows: Rows = [
        (int(r), int(m), int(s), float(v))
        for r, m, s, v in zip(
            rng.integers(0, 400, 30_000),
            rng.integers(0, 30, 30_000),
            rng.integers(0, 50, 30_000),
            rng.normal(size=30_000),
            strict=True,
        )
    ]
    prefix = f"far-{uuid.uuid4().hex}-"  # names new to the process, numbered after those
    history = _history(rows, prefix=prefix)
    assert history["run_id"].to_physical().min() >= 150_000  # type: ignore[operator]
    assert _same(_got(last_values(history)), _reference(rows, prefix))
    assert numpy_path == [True]
    assert elsewhere.len() == 150_000  # alive until here


def test_in_order_histories_and_a_late_smaller_step() -> None:
    rng = np.random.default_rng(3)
    rows: Rows = [
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
    rows: Rows = [(0, 0, s, float(i)) for i, s in enumerate(steps)]
    rows.append((1, 0, 1, 5.0))
    assert _same(_got(last_values(_history(rows))), _reference(rows))
