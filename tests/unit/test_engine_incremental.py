"""Matrices extended with appended history rows (`Workspace.extended`) equal fresh ones, exactly.

A live widget's runs grow poll by poll; the engine writes the appended points into the matrices
it kept for the previous runs. These tests grow runs by random appends (new runs, new steps,
gaps, non-finite values, a step logged again, a new metric, a run that leaves, hidden runs)
and compare every extension with the matrices and the frame made from a fresh copy.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from engine_helpers import final_values_reference
from hypothesis import event, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import rungroup as rg
from rungroup.engine import dense, dense_matrix, dense_stats, last_values
from rungroup.engine.grouping import group_runs
from rungroup.engine.workspace import Workspace
from rungroup.engine.xaxis import select_metrics
from rungroup.runs import HISTORY_SCHEMA, Runs
from rungroup.widget import Explorer

METRICS = ("loss", "acc", "lr")


def rows_frame(rows: list[tuple[str, str, int, float]]) -> pl.DataFrame:
    """History rows as a follower appends them (the history schema, categoricals)."""
    frame = pl.DataFrame(
        rows,
        schema={"run_id": pl.String, "metric": pl.String, "step": pl.Int64, "value": pl.Float64},
        orient="row",
    )
    return frame.select(
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in HISTORY_SCHEMA.items()
    )


def grown(runs: Runs, table: list[dict[str, Any]], appended: pl.DataFrame) -> Runs:
    return Runs(pl.DataFrame(table), pl.concat([runs.history.collect(), appended]))


def fresh_copy(runs: Runs) -> Runs:
    return Runs(runs.runs, runs.history.collect())


def assert_same_matrices(
    got: dense_matrix.Prepared | None, expected: dense_matrix.Prepared | None
) -> None:
    assert (got is None) == (expected is None)
    if got is None or expected is None:
        return
    assert np.array_equal(got.run_codes, expected.run_codes)
    assert np.array_equal(got.others, expected.others)
    assert len(got.matrices) == len(expected.matrices)
    for mine, theirs in zip(got.matrices, expected.matrices, strict=True):
        assert np.array_equal(mine.x, theirs.x)
        assert np.array_equal(mine.values, theirs.values, equal_nan=True)
        for name in ("dropped", "present"):
            a, b = getattr(mine, name), getattr(theirs, name)
            assert (a is None) == (b is None), name
            assert a is None or np.array_equal(a, b), name
        assert mine.contiguous == theirs.contiguous


def aggregate_reading(workspace: Workspace, view: rg.View) -> tuple[pl.DataFrame, bool]:
    """`Workspace.aggregate()`, and whether it made matrices from the whole history."""
    calls: list[Any] = []
    prepare = dense.prepare

    def counting(*args: Any) -> Any:
        calls.append(args)
        return prepare(*args)

    dense.prepare = counting  # type: ignore[assignment]
    try:
        return workspace.aggregate(view), bool(calls)
    finally:
        dense.prepare = prepare  # type: ignore[assignment]


@st.composite
def growth(draw: st.DrawFn) -> tuple[list[list[dict[str, Any]]], list[list[Any]], list[bool]]:
    """A runs table and history rows per poll: the first poll, then 1-4 appends. Returns the
    tables, the rows of each poll and whether the widget aggregates after each append."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    n_metrics = draw(st.integers(1, 3))
    stride = draw(st.sampled_from([1, 1, 1, 3, 10**6]))  # 10**6: beyond _scattered's limits
    odd = draw(st.sampled_from([0.0, 0.1]))
    polls = draw(st.integers(2, 5))
    ids = [f"r{i}" for i in rng.sample(range(8), 8)]  # ids come in no particular order
    table: list[dict[str, Any]] = []
    gone: list[dict[str, Any]] = []
    next_step: dict[str, int] = {}
    tables, rows_per_poll, aggregated = [], [], []
    for poll in range(polls):
        if ids and (not table or rng.random() < 0.5):
            count = rng.randint(1, 3)
            for run_id in ids[:count]:
                table.append({"id": run_id, "group": rng.choice(["a", "b"])})
                next_step[run_id] = rng.choice([0, 0, 2])
            ids = ids[count:]
        if gone and rng.random() < 0.5:
            table.append(gone.pop())  # back, with its earlier points
        if poll and rng.random() < 0.1 and len(table) > 1:
            gone.append(table.pop(0))  # a run left the table (its run.json became unreadable)
        rows = []
        metrics = list(METRICS[: n_metrics + (1 if poll and rng.random() < 0.1 else 0)])
        for run in table:
            if rng.random() < 0.2:
                continue  # nothing new from this run in this poll
            first = next_step[run["id"]]
            count = rng.randint(0, 4)
            steps = [s for s in range(first, first + count) if rng.random() > 0.15]  # gaps
            next_step[run["id"]] = first + count
            for step in steps:
                for metric in metrics:
                    if rng.random() < 0.1:
                        continue
                    value = rng.choice([math.nan, math.inf]) if rng.random() < odd else 0.0
                    rows.append((run["id"], metric, step * stride, value or rng.uniform(-5, 5)))
        if poll and rows and rng.random() < 0.1:
            rows.append(rows[rng.randrange(len(rows))])  # a step logged again
        if rng.random() < 0.3:
            rng.shuffle(rows)
        tables.append([dict(run) for run in table])
        rows_per_poll.append(rows)
        aggregated.append(rng.random() < 0.8)
    return tables, rows_per_poll, aggregated


VIEWS = st.fixed_dictionaries(
    {
        "group_by": st.sampled_from([("group",), ()]),
        "grouping": st.booleans(),
        "align": st.sampled_from(["auto", "auto", "exact", "interpolate", "bucket"]),
        "band": st.sampled_from(["std", "ci", "quantile"]),
        "points": st.integers(2, 16),
        "hidden": st.sampled_from([frozenset(), frozenset({"r1"}), frozenset({"r0", "r3"})]),
        # each run smoothed before aggregation: made from the extended matrices
        "smoothing": st.sampled_from(["none", "none", "ema", "gaussian"]),
    }
)


@settings(max_examples=400, deadline=None)
@given(growth(), VIEWS)
def test_extended_matrices_equal_fresh_ones(
    polls: tuple[list[list[dict[str, Any]]], list[list[Any]], list[bool]], view: dict[str, Any]
) -> None:
    tables, rows_per_poll, aggregated = polls
    resolved = rg.View(**view)
    runs = Runs(pl.DataFrame(tables[0]), rows_frame(rows_per_poll[0]))
    workspace = Workspace(runs)
    if runs.metrics:
        workspace.aggregate(resolved)
    for table, rows, aggregate_now in zip(
        tables[1:], rows_per_poll[1:], aggregated[1:], strict=True
    ):
        appended = rows_frame(rows)
        after = grown(runs, table, appended)
        workspace = workspace.extended(after, appended)
        runs = after
        if not aggregate_now or not runs.metrics:
            continue
        grouping = group_runs(runs, resolved)
        metrics = select_metrics(runs, resolved)
        kept = len(workspace._matrices) > 0
        got, read_history = aggregate_reading(workspace, resolved)
        if kept:
            event("extension left to prepare" if read_history else "extended")
        copy = fresh_copy(runs)
        bins = resolved.points if resolved.align == "bucket" else None
        smoothing = resolved if resolved.smoothing != "none" else None
        if grouping.runs.height == 0:  # nothing aggregated, no matrices to compare
            continue
        found = workspace._matrices.prepared(resolved, grouping, metrics)
        assert_same_matrices(
            None if found is None else found[0],
            dense.prepare(copy, group_runs(copy, resolved), metrics, bins, smoothing),
        )
        assert_frame_equal(got, rg.aggregate(copy, view=resolved), check_exact=True)


def live_runs(steps: range, n_runs: int = 4) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    table = [{"id": f"r{i}", "group": "ab"[i % 2]} for i in range(n_runs)]
    rows = [
        (f"r{i}", metric, step, float(i + step))
        for step in steps
        for i in range(n_runs)
        for metric in ("loss", "acc")
    ]
    return table, rows_frame(rows)


def counting_prepare(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    prepare = dense.prepare

    def counting(*args: Any) -> Any:
        calls.append(args)
        return prepare(*args)

    monkeypatch.setattr(dense, "prepare", counting)
    return calls


def test_new_steps_and_a_new_run_extend_without_reading_the_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = counting_prepare(monkeypatch)
    table, rows = live_runs(range(10))
    runs = Runs(pl.DataFrame(table), rows)
    workspace = Workspace(runs)
    workspace.aggregate(group_by=("group",), points=5)
    assert len(calls) == 1
    for poll in range(1, 4):
        table, appended = live_runs(range(10 * poll, 10 * poll + 10), n_runs=4 + poll)
        runs = grown(runs, table, appended)
        workspace = workspace.extended(runs, appended)
        got = workspace.aggregate(group_by=("group",), points=5)
        regrouped = workspace.aggregate(grouping=False, points=5)
        copy = fresh_copy(runs)
        assert_frame_equal(got, rg.aggregate(copy, group_by=("group",), points=5))
        assert_frame_equal(regrouped, rg.aggregate(copy, grouping=False, points=5))
    assert len(calls) == 1 + 2 * 3  # only the fresh copies (aggregate() keeps nothing: twice each)


def test_a_step_logged_again_is_left_to_prepare(monkeypatch: pytest.MonkeyPatch) -> None:
    table, rows = live_runs(range(10))
    runs = Runs(pl.DataFrame(table), rows)
    workspace = Workspace(runs)
    workspace.aggregate(points=5)
    calls = counting_prepare(monkeypatch)
    appended = rows.head(1)  # r0's loss at step 0, logged again
    after = grown(runs, table, appended)
    workspace = workspace.extended(after, appended)
    got = workspace.aggregate(points=5)
    assert len(calls) == 1  # the extension gave up; prepare found the step logged twice
    view = rg.View(points=5)
    assert workspace._matrices.prepared(view, group_runs(after, view), []) is None
    assert_frame_equal(got, rg.aggregate(fresh_copy(after), points=5))


def test_slices_are_kept_with_the_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    table, rows = live_runs(range(100))
    runs = Runs(pl.DataFrame(table), rows)
    workspace = Workspace(runs)
    view = rg.View(group_by=("group",), points=10)
    first = workspace.aggregate(view)
    found = workspace._matrices.prepared(view, group_runs(runs, view), ["acc", "loss"])
    assert found is not None and len(found[1]) == 2  # one slice per metric
    monkeypatch.setattr(dense_stats, "MetricMatrix", None)  # a new slice would fail
    regrouped = workspace.aggregate(grouping=False, points=10)
    assert first.height and regrouped.height


@pytest.fixture
def event_loop_for_timers() -> Iterator[None]:
    """A loop for the widget's timer (never run: the test drives the polls)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.mark.usefixtures("event_loop_for_timers")
def test_a_live_widget_extends_its_matrices_and_shows_what_a_fresh_load_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the store follower: new steps, a new run, a step logged again, a new metric."""
    first = rg.init(dir=tmp_path, project="p", config={"lr": 0.1})
    log(first, range(0, 5))
    widget = Explorer(tmp_path, live=True, group_by=["config.lr"], points=8)
    widget._live.cancel()  # polls driven below
    widget.aggregated  # noqa: B018 - the matrices the next polls extend
    calls = counting_prepare(monkeypatch)
    second = rg.init(dir=tmp_path, project="p", config={"lr": 0.2})
    polls = [
        lambda: (log(first, range(5, 9)), log(second, range(0, 3))),
        lambda: log(second, range(3, 12)),
        lambda: log(first, [8]),  # step 8 logged again: the history is read again
        lambda: log(second, [12], metric="acc"),  # a new metric: other matrices
    ]
    for number, write_poll in enumerate(polls):
        write_poll()
        assert widget.refresh()
        before = len(calls)
        shown = widget.aggregated
        assert len(calls) - before == (0 if number < 2 else 1)  # 1: made from the history
        expected = rg.aggregate(rg.load(tmp_path), group_by=["config.lr"], points=8)
        assert_frame_equal(shown, expected, check_exact=True)
    widget.close()


def log(run: Any, steps: Any, metric: str = "loss") -> None:
    for step in steps:
        run.log({metric: 1.0 / (step + 1) + len(run.id)}, step=step)
    run._flush()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["r0", "r1", "r2"]),
            st.sampled_from(["loss", "acc"]),
            st.one_of(st.none(), st.integers(0, 3)),
            st.one_of(st.none(), st.sampled_from([0.5, 1.5, math.nan, math.inf])),
        ),
        max_size=30,
    ),
    st.integers(0, 30),
)
def test_final_values_kept_between_polls_equal_a_fresh_computation(
    rows: list[tuple[str, str, int | None, float | None]], cut: int
) -> None:
    """Ties at one step (the last logged wins), null steps and values, NaN, a run with no points."""
    history = pl.DataFrame(
        rows,
        schema={"run_id": pl.String, "metric": pl.String, "step": pl.Int64, "value": pl.Float64},
        orient="row",
    )
    runs = Runs(pl.DataFrame({"id": ["r0", "r1", "r2", "r3"]}), history)
    full = runs.history.collect()
    last = last_values.extend(None, full.head(cut).lazy())
    last = last_values.extend(last, full.slice(cut).lazy())
    got = last_values.final_values(runs, last, prefix="m:")
    expected = final_values_reference(runs)
    assert_frame_equal(got, expected.select(got.columns), check_column_order=False)
    assert sorted(got.columns) == sorted(expected.columns)
