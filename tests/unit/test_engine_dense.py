"""The dense path (matrices of runs × steps) gives the frames of the general path.

`aggregate()` takes the dense path when x is the step and the runs' points fit a grid; these
tests force the general path for the same inputs and compare, over histories in every order,
with runs that stop early, skip steps, log non-finite values or several values at one step.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import polars as pl
import pytest
from engine_helpers import assert_same_frames
from hypothesis import event, given, settings
from hypothesis import strategies as st

import rungroup as rg
from rungroup.engine import dense, dense_matrix, dense_stats
from rungroup.engine.grouping import group_runs
from rungroup.engine.workspace import Workspace
from rungroup.engine.xaxis import categorical_codes
from rungroup.runs import Runs

METRICS = ("loss", "acc", "lr")


@contextmanager
def general_path() -> Iterator[None]:
    applies = dense.applies
    dense.applies = lambda view: False  # type: ignore[assignment]
    try:
        yield
    finally:
        dense.applies = applies  # type: ignore[assignment]


def both_paths(runs: Runs, **view: Any) -> pl.DataFrame:
    got = rg.aggregate(runs, **view)
    with general_path():
        expected = rg.aggregate(runs, **view)
    assert_same_frames(got, expected)
    return got


@st.composite
def histories(draw: st.DrawFn) -> Runs:
    """Runs in groups and tags, logging 1-3 metrics at steps that are the same for every run,
    a prefix of them (stopped early), or any subset; in run-, step- or random order."""
    n_runs = draw(st.integers(1, 7))
    n_steps = draw(st.integers(1, 14))
    layout = draw(st.sampled_from(["shared", "prefix", "subset"]))
    order = draw(st.sampled_from(["run-metric-step", "run-step-metric", "shuffled"]))
    metrics = METRICS[: draw(st.integers(1, 3))]
    odd = draw(st.sampled_from([0.0, 0.0, 0.1]))  # share of NaN/inf values
    twice = draw(st.sampled_from([False, False, True]))  # some step logged twice
    stride = draw(st.sampled_from([1, 1, 5]))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    table = []
    rows: list[tuple[str, str, int, float]] = []
    for i in range(n_runs):
        run_id = f"r{i}"
        table.append(
            {
                "id": run_id,
                "group": rng.choice(["a", "b", None]),
                "tags": rng.sample(["x", "y", "z"], rng.randint(0, 2)),
                "config.seed": i % 3,
            }
        )
        steps = list(range(n_steps))
        if layout == "prefix":
            steps = steps[: rng.randint(1, n_steps)]
        elif layout == "subset":
            steps = sorted(rng.sample(steps, rng.randint(1, n_steps)))
        for metric in metrics:
            for step in steps:
                value = rng.choice([math.nan, math.inf, -math.inf]) if rng.random() < odd else 0.0
                value = value or round(rng.uniform(-50, 50), 3)
                rows.append((run_id, metric, step * stride, value))
    if twice and rows:
        rows.append(rows[rng.randrange(len(rows))])
    if order == "run-step-metric":
        rows.sort(key=lambda row: (row[0], row[2], METRICS.index(row[1])))
    elif order == "shuffled":
        rng.shuffle(rows)
    history = pl.DataFrame(
        rows,
        schema={"run_id": pl.String, "metric": pl.String, "step": pl.Int64, "value": pl.Float64},
        orient="row",
    )
    return Runs(pl.DataFrame(table), history)


VIEWS = st.fixed_dictionaries(
    {
        "group_by": st.sampled_from([("group",), ("tags",), ("group", "config.seed"), ()]),
        "grouping": st.booleans(),
        "align": st.sampled_from(["auto", "exact", "interpolate", "bucket"]),
        "line": st.sampled_from(["mean", "median", "min", "max", "iqm"]),
        "band": st.sampled_from(["none", "minmax", "std", "stderr", "ci", "quantile"]),
        "points": st.integers(2, 16),
        "min_runs": st.integers(1, 3),
        "quantiles": st.sampled_from([(0.25, 0.75), (0.1, 0.9), (0.0, 1.0)]),
    }
)


@settings(max_examples=600, deadline=None)
@given(histories(), VIEWS)
def test_dense_path_equals_general_path(runs: Runs, view: dict[str, Any]) -> None:
    both_paths(runs, **view)
    resolved = rg.View(**view)
    made = dense.prepare(runs, group_runs(runs, resolved), list(runs.metrics), None)
    event("dense" if made is not None and dense.usable(made, resolved) else "general")


@settings(max_examples=100, deadline=None)
@given(histories(), VIEWS, st.sampled_from(["ema", "window", "gaussian"]))
def test_dense_path_smoothing_after_equals_general_path(
    runs: Runs, view: dict[str, Any], smoothing: str
) -> None:
    param = {"ema": 0.6, "window": 3, "gaussian": 1.5}[smoothing]
    both_paths(runs, **view, smoothing=smoothing, smoothing_param=param, smooth_order="after")


@settings(max_examples=300, deadline=None)
@given(
    histories(),
    VIEWS,
    st.sampled_from(
        [("ema", 0.6), ("window", 3), ("window", 4), ("gaussian", 1.5), ("gaussian", 4)]
    ),
)
def test_dense_path_smoothing_before_equals_general_path(
    runs: Runs, view: dict[str, Any], smoothing: tuple[str, float]
) -> None:
    # each run smoothed over its own points, whether they are a matrix's cells or a frame's rows
    kind, param = smoothing
    both_paths(runs, **view, smoothing=kind, smoothing_param=param, smooth_order="before")
    resolved = rg.View(**view, smoothing=kind, smoothing_param=param)
    found = dense.Matrices(runs).prepared(resolved, group_runs(runs, resolved), runs.metrics)
    event("dense" if found is not None and dense.usable(found[0], resolved) else "general")


def _grid_runs(order: str, ragged: bool = False) -> Runs:
    rows = []
    for i in range(4):
        for metric in ("loss", "acc"):
            for step in range(0, 30 if not (ragged and i == 3) else 12):
                rows.append((f"r{i}", metric, step, float(i * 100 + step)))
    if order == "run-step-metric":
        rows.sort(key=lambda row: (row[0], row[2], row[1]))
    history = pl.DataFrame(
        rows,
        schema={"run_id": pl.String, "metric": pl.String, "step": pl.Int64, "value": pl.Float64},
        orient="row",
    )
    table = pl.DataFrame({"id": [f"r{i}" for i in range(4)], "group": ["a", "a", "b", "b"]})
    return Runs(table, history)


@pytest.mark.parametrize("order", ["run-metric-step", "run-step-metric"])
@pytest.mark.parametrize("ragged", [False, True])
def test_histories_on_a_grid_take_the_dense_path(order: str, ragged: bool) -> None:
    runs = _grid_runs(order, ragged)
    view = rg.View(points=10)
    grouping = group_runs(runs, view)
    made = dense.prepare(runs, grouping, ["acc", "loss"], None)
    assert made is not None
    loss = made.matrices[1]
    assert loss.values.shape == (4, 30)
    assert (loss.present is None) == (not ragged)
    assert loss.values[0, 7] == 7.0 and loss.values[2, 29] == 229.0
    if ragged:
        assert loss.present is not None and loss.present[3].sum() == 12
        assert np.isnan(loss.values[3, 12:]).all()
    both_paths(runs, points=10, band="std")


def test_a_step_logged_twice_takes_the_general_path() -> None:
    runs = _grid_runs("run-metric-step")
    history = runs.history.collect()
    twice = Runs(runs.runs, pl.concat([history, history.head(1)]))
    grouping = group_runs(twice, rg.View())
    assert dense.prepare(twice, grouping, ["acc", "loss"], None) is None
    both_paths(twice, points=10)


def test_time_as_x_and_the_bootstrap_take_the_general_path() -> None:
    assert not dense.applies(rg.View(x="time"))
    assert not dense.applies(rg.View(ci_method="bootstrap"))
    assert dense.applies(rg.View(smoothing="ema", smooth_order="before"))
    assert dense.applies(rg.View(smoothing="ema", smooth_order="after"))


def test_matrices_are_kept_per_runs_object_and_view(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Any] = []  # matrices made from the history
    derivations: list[Any] = []  # smoothed or bucketed matrices made from those
    prepare, derived = dense.prepare, dense_matrix.derived

    def counting_prepare(*args: Any) -> Any:
        reads.append(args[3:])
        return prepare(*args)

    def counting_derived(made: Any, bins: Any, smoothing: Any) -> Any:
        if bins is not None or smoothing is not None:
            derivations.append((bins, smoothing))
        return derived(made, bins, smoothing)

    monkeypatch.setattr(dense, "prepare", counting_prepare)
    monkeypatch.setattr(dense, "derived", counting_derived)
    runs = _grid_runs("run-metric-step")
    workspace = Workspace(runs)
    first = workspace.aggregate(group_by=("group",), points=10)
    regrouped = workspace.aggregate(grouping=False, points=10, band="minmax")
    assert len(reads) == 1  # regrouping reuses the matrices
    workspace.aggregate(group_by=("group",), points=10, hidden=frozenset({"r0"}))
    assert len(reads) == 1  # a run hidden: the others' rows of the kept matrices
    workspace.aggregate(group_by=("group",), align="bucket", points=10)
    workspace.aggregate(grouping=False, align="bucket", points=10)
    workspace.aggregate(group_by=("group",), align="bucket", points=12)
    assert len(reads) == 1 and len(derivations) == 2  # bins made from the matrices as read
    smoothed = {"smoothing": "gaussian", "smoothing_param": 2.0}
    workspace.aggregate(group_by=("group",), points=10, **smoothed)
    workspace.aggregate(grouping=False, points=10, **smoothed)
    workspace.aggregate(group_by=("group",), points=10, smooth_order="after", **smoothed)
    assert len(reads) == 1 and len(derivations) == 3  # runs smoothed once; after: not at all
    workspace.aggregate(points=10, smoothing="gaussian", smoothing_param=3.0)
    assert len(reads) == 1 and len(derivations) == 4  # another smoothing: smoothed again
    assert first.height and regrouped.height
    assert_same_frames(rg.aggregate(runs, group_by=("group",), points=10), first)
    assert len(reads) == 2  # aggregate() keeps nothing: its own matrices
    rg.aggregate(runs, group_by=("group",), points=10)
    assert len(reads) == 3
    twice = Workspace(
        Runs(runs.runs, pl.concat([runs.history.collect(), runs.history.collect().head(1)]))
    )
    twice.aggregate(points=10)
    twice.aggregate(grouping=False, points=10)
    twice.aggregate(align="bucket", points=10)
    assert len(reads) == 4  # a history that does not fit is not tried again
    workspace.close()
    assert len(workspace._matrices) == 0


def test_a_workspace_stops_its_threads_when_closed_or_collected() -> None:
    runs = _grid_runs("run-metric-step")
    threshold = dense_stats._PARALLEL_CELLS
    dense_stats._PARALLEL_CELLS = 1
    try:
        with Workspace(runs) as workspace:
            workspace.aggregate(grouping=False, band="minmax", points=10)
            (pool,) = workspace._pools
        assert pool._shutdown and not workspace._pools
        workspace = Workspace(runs)
        workspace.aggregate(grouping=False, band="minmax", points=10)
        (pool,) = workspace._pools
        del workspace
        gc.collect()
        assert pool._shutdown
    finally:
        dense_stats._PARALLEL_CELLS = threshold


def test_runs_logging_at_their_own_steps_take_the_general_path() -> None:
    """A grid of every step any run logged would be mostly empty cells: not worth it."""
    rows = [(f"r{i}", "loss", 1000 * i + j, float(j)) for i in range(1000) for j in range(20)]
    history = pl.DataFrame(
        rows,
        schema={"run_id": pl.String, "metric": pl.String, "step": pl.Int64, "value": pl.Float64},
        orient="row",
    )
    runs = Runs(pl.DataFrame({"id": [f"r{i}" for i in range(1000)]}), history)
    grouping = group_runs(runs, rg.View())
    assert dense.prepare(runs, grouping, ["loss"], None) is None
    both_paths(runs, points=50, align="bucket")


@settings(max_examples=150, deadline=None)
@given(histories(), VIEWS)
def test_blocks_reduced_in_threads_give_the_same_frames(runs: Runs, view: dict[str, Any]) -> None:
    """Every block big enough for the thread pool (and big classes cut in two)."""
    threshold = dense_stats._PARALLEL_CELLS
    dense_stats._PARALLEL_CELLS = 1
    try:
        both_paths(runs, **view)
    finally:
        dense_stats._PARALLEL_CELLS = threshold


def _prepared_equal(got: dense_matrix.Prepared, expected: dense_matrix.Prepared) -> None:
    assert np.array_equal(got.run_codes, expected.run_codes)
    assert np.array_equal(got.metric_codes, expected.metric_codes)
    for a, b in zip(got.matrices, expected.matrices, strict=True):
        assert np.array_equal(a.x, b.x)
        assert np.array_equal(a.values, b.values, equal_nan=True)
        # None stands for "no value dropped" and "every cell logged"
        shape = a.values.shape
        for field, full in (
            ("dropped", np.zeros(shape, dtype=np.int64)),
            ("present", np.ones(shape, dtype=bool)),
        ):
            left, right = getattr(a, field), getattr(b, field)
            assert np.array_equal(full if left is None else left, full if right is None else right)
        assert a.contiguous == b.contiguous


@settings(max_examples=300, deadline=None)
@given(histories(), VIEWS, st.data())
def test_hiding_runs_cuts_the_kept_matrices_as_prepare_makes_them(
    runs: Runs, view: dict[str, Any], data: st.DataObject
) -> None:
    """A widget hiding runs: the matrices kept for every run give the others' rows (and only
    the grid steps they logged), equal to `prepare` reading the history for them alone; and
    the aggregate equals the general path's."""
    hidden = frozenset(data.draw(st.sets(st.sampled_from(runs.ids), max_size=len(runs.ids) - 1)))
    shown = rg.View(**view)
    matrices = dense.Matrices(runs)
    every = matrices.prepared(shown, group_runs(runs, shown), list(runs.metrics))
    with_hidden = shown.replace(hidden=hidden)
    grouping = group_runs(runs, with_hidden)
    found = matrices.prepared(with_hidden, grouping, list(runs.metrics))
    expected = dense.prepare(runs, grouping, list(runs.metrics), None)
    if found is None or expected is None:
        assert found is None or every is not None
        return
    bins = with_hidden.points if with_hidden.align == "bucket" else None
    _prepared_equal(found[0], dense_matrix.derived(expected, bins, None))
    event("cut from the kept matrices" if every is not None else "read")
    with Workspace(runs) as workspace:
        workspace.aggregate(shown)
        got = workspace.aggregate(with_hidden)
    with general_path():
        assert_same_frames(got, rg.aggregate(runs, **view, hidden=hidden))


def test_hiding_runs_of_a_grid_reads_no_history_again(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _grid_runs("run-metric-step", ragged=True)
    view = rg.View(points=10, align="bucket")
    matrices = dense.Matrices(runs)
    assert matrices.prepared(view, group_runs(runs, view), ["acc", "loss"]) is not None

    def unread(*args: Any) -> None:
        raise AssertionError("the history was read again")

    monkeypatch.setattr(dense, "prepare", unread)
    for hidden in ({"r0"}, {"r0", "r1"}, {"r3"}, {"r1", "r2", "r3"}):
        with_hidden = view.replace(hidden=frozenset(hidden))
        found = matrices.prepared(with_hidden, group_runs(runs, with_hidden), ["acc", "loss"])
        assert found is not None
        assert found[0].matrices[0].values.shape[0] == 4 - len(hidden)
    # r3 stopped at step 11: with the others hidden the grid is its 12 steps, bucketed anew
    only_r3 = view.replace(hidden=frozenset({"r0", "r1", "r2"}))
    found = matrices.prepared(only_r3, group_runs(runs, only_r3), ["acc", "loss"])
    assert found is not None and found[0].matrices[0].x.max() < 12


def test_several_hidden_runs_keep_a_regular_history_on_the_fast_read() -> None:
    """Hidden runs are blocks of the history with no row: two or more of them do not send a
    history in run blocks to the cell-by-cell read."""
    runs = _grid_runs("run-metric-step")
    view = rg.View(points=10, hidden=frozenset({"r0", "r2"}))
    grouping = group_runs(runs, view)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dense_matrix, "_scattered", lambda points: pytest.fail("read cell by cell"))
        made = dense.prepare(runs, grouping, ["acc", "loss"], None)
    assert made is not None and made.matrices[0].values.shape == (2, 30)
    assert sorted(made.others.tolist()) == sorted(
        categorical_codes(runs.history.collect_schema()["run_id"], ["r0", "r2"]).tolist()
    )
