"""The bucket push-down on an MLflow SQLite store (``rg.load(db, pushdown=True)``): the same
`Runs` and the same aggregates as the in-memory SQLite reader, the buckets computed by
SQLite; views that need exact points read only the requested metric's points."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from server_helpers import log_runs

import rungroup as rg
from rungroup.engine import Workspace
from rungroup.engine.align import bin_index
from rungroup.sources.mlflow.sqlite_pushdown import SqliteHistory
from rungroup.view import View

LINES = ("mean", "median", "min", "max", "iqm")
BANDS = ("none", "minmax", "std", "stderr", "ci", "quantile")
START = 1_700_000_000_000


def _specs() -> list[dict[str, Any]]:
    """Runs of three learning rates, uneven lengths and steps, a NaN and an infinity."""
    rng = np.random.default_rng(11)
    specs: list[dict[str, Any]] = []
    for index in range(9):
        lr = (0.1, 0.01, 0.001)[index % 3]
        steps = np.sort(rng.choice(np.arange(0, 400), size=30 + 5 * index, replace=False))
        loss = [
            (int(s), START + 1000 * int(s) + index, float(np.exp(-s / 100) + rng.normal(0, 0.1)))
            for s in steps
        ]
        acc = [(int(s), START + 1000 * int(s), float(rng.random())) for s in steps]
        if index == 4:
            loss[3] = (loss[3][0], loss[3][1], math.nan)
            loss[5] = (loss[5][0], loss[5][1], -math.inf)
        specs.append(
            {
                "name": f"run-{index}",
                "params": {"lr": lr},
                "metrics": {"loss": loss, "acc": acc},
            }
        )
    return specs


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-pushdown") / "mlflow.db"
    log_runs(f"sqlite:///{path}", "sweep", _specs())
    edges = [
        {
            "name": f"edge-{index}",
            "params": {"seed": index},
            "metrics": {"edge": [(s, START + 1000 * s, float(s + index)) for s in range(19)]},
        }
        for index in range(3)
    ]
    log_runs(f"sqlite:///{path}", "edges", edges)
    return path


@pytest.mark.parametrize("x", ["step", "time"])
def test_sqlite_pushdown_equals_the_in_memory_reader_for_every_line_and_band(
    store: Path, x: str
) -> None:
    pushed_runs = rg.load(store, pushdown=True, experiments=["sweep"], cache=False)
    memory = rg.load(store, experiments=["sweep"], cache=False)
    assert isinstance(pushed_runs.provider, SqliteHistory)
    assert memory.provider is None
    assert pushed_runs.metrics == memory.metrics == ["acc", "loss"]
    assert_frame_equal(pushed_runs.runs.sort("name"), memory.runs.sort("name"))
    for line in LINES:
        for band in BANDS:
            view = View(
                metrics=("loss", "acc"),
                group_by=("config.lr",),
                x=x,
                align="bucket",
                points=25,
                line=line,
                band=band,
            )
            assert_frame_equal(
                rg.aggregate(pushed_runs, view),
                rg.aggregate(memory, view),
                check_exact=False,
                rel_tol=1e-9,
                abs_tol=1e-12,
            )


def test_sqlite_pushdown_puts_x_on_an_edge_where_numpy_histogram_does(store: Path) -> None:
    """Steps 0..18 in 14 buckets: step 9 lies on an edge (9 = 7 x 18/14) the arithmetic alone
    puts a bin too low."""
    pushed_runs = rg.load(store, pushdown=True, experiments=["edges"], cache=False)
    memory = rg.load(store, experiments=["edges"], cache=False)
    for points in (7, 13, 14, 17):
        view = View(metrics=("edge",), group_by=(), align="bucket", points=points)
        assert_frame_equal(
            rg.aggregate(pushed_runs, view), rg.aggregate(memory, view), rel_tol=1e-12
        )
    view = View(metrics=("edge",), group_by=(), align="bucket", points=14)
    counts = rg.aggregate(pushed_runs, view).group_by("x").agg(pl.col("n").first()).sort("x")
    assert counts.height == 14 == int((np.histogram(np.arange(19.0), 14, (0, 18))[0] > 0).sum())


@pytest.mark.parametrize("align", ["exact", "interpolate"])
def test_exact_alignments_read_the_points_of_the_requested_metric_only(
    store: Path, align: str
) -> None:
    """Not pushed down: the view reads the exact points, of its metric and no other."""
    pushed_runs = rg.load(store, pushdown=True, experiments=["sweep"], cache=False)
    memory = rg.load(store, experiments=["sweep"], cache=False)
    provider = pushed_runs.provider
    assert isinstance(provider, SqliteHistory)
    asked: list[list[str] | None] = []
    original = provider.points

    def counting(metrics: list[str] | None, starts: dict[str, int | None]) -> pl.DataFrame:
        asked.append(metrics)
        return original(metrics, starts)

    provider.points = counting  # type: ignore[method-assign]
    view = View(metrics=("acc",), group_by=("config.lr",), align=align, points=30)
    assert_frame_equal(
        rg.aggregate(pushed_runs, view),
        rg.aggregate(memory, view),
        check_exact=False,
        rel_tol=1e-9,
        abs_tol=1e-12,
    )
    assert asked and all(metrics == ["acc"] for metrics in asked)


def test_sqlite_pushdown_regroup_reuses_the_answer(store: Path) -> None:
    runs = rg.load(store, pushdown=True, experiments=["sweep"], cache=False)
    provider = runs.provider
    assert provider is not None
    asked: list[Any] = []
    original = provider.bucket_sums

    def counting(*args: Any) -> Any:
        asked.append(args)
        return original(*args)

    provider.bucket_sums = counting  # type: ignore[method-assign]
    with Workspace(runs) as workspace:
        view = View(metrics=("loss",), group_by=("config.lr",), align="bucket", points=20)
        workspace.aggregate(view)
        workspace.aggregate(view.replace(group_by=()))
        workspace.aggregate(view.replace(band="minmax", line="median"))
    assert len(asked) == 1


def _bare_store(path: Path, steps: list[int]) -> None:
    """A file with MLflow's `metrics` columns and one run's points at `steps` (value 1 each):
    enough for `SqliteHistory`, whose statements read only that table (and `runs` for time)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute(
            "CREATE TABLE metrics (key TEXT, value REAL, timestamp INTEGER, run_uuid TEXT, "
            "step INTEGER, is_nan BOOLEAN, PRIMARY KEY (key, timestamp, step, run_uuid, value, "
            "is_nan))"
        )
        connection.executemany(
            "INSERT INTO metrics VALUES ('m', 1.0, ?, 'r', ?, 0)",
            [(START + i, s) for i, s in enumerate(steps)],
        )
        connection.commit()


@settings(max_examples=60, deadline=None)
# where numpy's arithmetic guess is a bin off and its edges correct it (searched for): x = 15
# of 0..22 in 22 bins is one bin up from the guess, x = 7 of 0..14 in 50 bins one bin down
@example(lo=0, span=22, inner=[15], bins=22)
@example(lo=0, span=14, inner=[7], bins=50)
@given(
    lo=st.integers(-1_000, 1_000),
    span=st.integers(1, 5_000),
    inner=st.lists(st.integers(0, 5_000), max_size=40),
    bins=st.integers(1, 64),
)
def test_sqlite_buckets_are_numpy_histograms(
    tmp_path_factory: pytest.TempPathFactory, lo: int, span: int, inner: list[int], bins: int
) -> None:
    """Every step lands in the bucket `numpy.histogram` (and `bin_index`) gives it."""
    steps = sorted({lo, lo + span, *(lo + min(i, span) for i in inner)})
    path = tmp_path_factory.mktemp("bare") / "mlflow.db"
    _bare_store(path, steps)
    sums = SqliteHistory(path).bucket_sums(["r"], ["m"], "step", bins)
    assert sums is not None
    counts = np.zeros(bins, dtype=np.int64)
    counts[sums.bucket] = sums.counts
    expected = np.histogram(np.array(steps, dtype=float), bins, (lo, lo + span))[0]
    assert counts.tolist() == expected.tolist()
    x = np.array(steps, dtype=float)
    lo_of, hi_of = np.array([x.min()]), np.array([x.max()])
    assert np.bincount(bin_index(x, None, lo_of, hi_of, bins), minlength=bins).tolist() == (
        expected.tolist()
    )
