"""An MLflow server's PostgreSQL store read directly: the same `Runs` and the same aggregates
as the REST server and an in-memory copy; the history reduced in the database."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from server_helpers import Server, log_runs

import rungroup as rg
from rungroup.engine import Workspace
from rungroup.runs import Runs
from rungroup.view import View

LINES = ("mean", "median", "min", "max", "iqm")
BANDS = ("none", "minmax", "std", "stderr", "ci", "quantile")
START = 1_700_000_000_000
#: other tests log runs into the same server
SWEEP: dict[str, Any] = {"experiments": ["sweep"]}


def _specs() -> list[dict[str, Any]]:
    """Runs of three learning rates, uneven lengths and steps, a NaN and an infinity."""
    rng = np.random.default_rng(7)
    specs: list[dict[str, Any]] = []
    for index in range(9):
        lr = (0.1, 0.01, 0.001)[index % 3]
        length = 40 + 7 * index
        steps = np.sort(rng.choice(np.arange(0, 400), size=length, replace=False))
        loss = [
            (int(s), START + 1000 * int(s), float(np.exp(-s / 100) + rng.normal(0, 0.1)))
            for s in steps
        ]
        acc = [(int(s), START + 1000 * int(s), float(rng.random())) for s in steps]
        if index == 4:
            loss[3] = (loss[3][0], loss[3][1], math.nan)
            loss[5] = (loss[5][0], loss[5][1], math.inf)
        specs.append(
            {
                "name": f"run-{index}",
                "params": {"lr": lr, "seed": index},
                "tags": {"group": f"lr-{lr}", "team": "vision"},
                "metrics": {"loss": loss, "acc": acc},
            }
        )
    return specs


@pytest.fixture(scope="module")
def server(mlflow_server: Server) -> Server:
    log_runs(mlflow_server.tracking_uri, "sweep", _specs())
    return mlflow_server


def _ordered(runs: Runs) -> pl.DataFrame:
    return runs.runs.drop("source").with_columns(pl.col("id").cast(pl.String)).sort("id")


def _in_memory(runs: Runs) -> Runs:
    """A copy with the history read whole into memory and no provider: the in-memory engine."""
    return Runs(runs.runs, runs.history.collect(), validate=False)


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg", "postgresql+psycopg2"])
def test_database_uri_loads_the_runs_the_rest_server_gives(server: Server, scheme: str) -> None:
    database = rg.load(server.uri(scheme), **SWEEP)
    rest = rg.load(server.tracking_uri, **SWEEP)
    assert database.provider is not None
    assert len(database) == 9
    assert database.metrics == rest.metrics == ["acc", "loss"]
    assert_frame_equal(_ordered(database), _ordered(rest), check_column_order=False)
    assert set(database.runs["source"].unique()) == {
        f"mlflow:postgresql://{server.user}@{server.host}:{server.port}/{server.database}"
    }
    history = database.history.collect().sort("run_id", "metric", "step")
    expected = rest.history.collect().sort("run_id", "metric", "step")
    assert_frame_equal(
        history.with_columns(pl.col("run_id", "metric").cast(pl.String)),
        expected.with_columns(pl.col("run_id", "metric").cast(pl.String)),
    )


@pytest.mark.parametrize("x", ["step", "time"])
def test_pushed_down_aggregates_equal_the_in_memory_engine_for_every_line_and_band(
    server: Server, x: str
) -> None:
    database = rg.load(server.uri(), **SWEEP)
    memory = _in_memory(database)
    rest = rg.load(server.tracking_uri, **SWEEP)
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
            pushed = rg.aggregate(database, view)
            for other in (memory, rest):
                expected = rg.aggregate(other, view)
                assert_frame_equal(pushed, expected, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)


def test_a_regrouping_or_another_band_reuses_what_was_fetched(server: Server) -> None:
    database = rg.load(server.uri(), **SWEEP)
    asked: list[tuple[Any, ...]] = []
    provider = database.provider
    assert provider is not None
    original = provider.bucket_sums

    def counting(*args: Any) -> Any:
        asked.append(args[2:])
        return original(*args)

    provider.bucket_sums = counting  # type: ignore[method-assign]
    with Workspace(database) as workspace:
        view = View(metrics=("loss",), group_by=("config.lr",), align="bucket", points=20)
        first = workspace.aggregate(view)
        workspace.aggregate(view.replace(group_by=("group",)))
        workspace.aggregate(view.replace(grouping=False, band="minmax", line="median"))
        assert len(asked) == 1
        workspace.aggregate(view.replace(points=10))
        workspace.aggregate(view.replace(metrics=("acc",)))
        assert len(asked) == 3
    assert first.height > 0
    # few rows travel: at most runs x points per metric
    sums = original([str(i) for i in database.runs["id"]], ["loss"], "step", 20)
    assert sums is not None and sums.sums.size <= len(database) * 20


def test_x_on_a_bucket_edge_lands_in_the_bin_numpy_histogram_gives(mlflow_server: Server) -> None:
    """Steps 0..18 in 14 buckets: step 9 is on an edge whose position (9 = 7 x 18/14) the
    arithmetic alone misses; the database must put it where the in-memory engine does."""
    specs = [
        {
            "name": f"edge-{index}",
            "params": {"seed": index},
            "tags": {},
            "metrics": {"loss": [(s, START + 1000 * s, float(s + index)) for s in range(19)]},
        }
        for index in range(3)
    ]
    log_runs(mlflow_server.tracking_uri, "edges", specs)
    database = rg.load(mlflow_server.uri(), experiments=["edges"])
    memory = _in_memory(database)
    for points in (7, 13, 14, 17):
        view = View(metrics=("loss",), group_by=(), align="bucket", points=points)
        pushed = rg.aggregate(database, view)
        assert_frame_equal(pushed, rg.aggregate(memory, view), check_exact=False, rel_tol=1e-12)
    view = View(metrics=("loss",), group_by=(), align="bucket", points=14)
    counts = rg.aggregate(database, view).group_by("x").agg(pl.col("n").first()).sort("x")
    per_bin = np.histogram(np.arange(19.0), 14, (0, 18))[0]
    assert counts.height == 14 and (per_bin > 0).all()


@pytest.mark.parametrize("align", ["exact", "interpolate"])
def test_exact_alignments_fetch_the_points_of_the_requested_metric_only(
    server: Server, align: str
) -> None:
    """Not pushed down: the view reads the exact points, of its metric and no other."""
    database = rg.load(server.uri(), **SWEEP)
    memory = _in_memory(database)
    provider = database.provider
    assert provider is not None
    asked: list[list[str] | None] = []
    original = provider.points  # type: ignore[attr-defined]

    def counting(metrics: list[str] | None, starts: dict[str, int | None]) -> pl.DataFrame:
        asked.append(metrics)
        return original(metrics, starts)  # type: ignore[no-any-return]

    provider.points = counting  # type: ignore[attr-defined]
    view = View(metrics=("acc",), group_by=("config.lr",), align=align, points=30)
    assert_frame_equal(
        rg.aggregate(database, view),
        rg.aggregate(memory, view),
        check_exact=False,
        rel_tol=1e-9,
        abs_tol=1e-12,
    )
    assert asked and all(metrics == ["acc"] for metrics in asked)


@pytest.mark.parametrize(("last", "points"), [(22, 22), (14, 50)])
def test_x_where_numpys_guess_is_a_bin_off_lands_where_numpy_histogram_puts_it(
    mlflow_server: Server, last: int, points: int
) -> None:
    """Steps 0..22 in 22 buckets (numpy's arithmetic guess puts x = 15 a bin low) and 0..14 in
    50 (x = 7 a bin high): numpy corrects them against its edges, so must the database."""
    experiment = f"guess-{last}-{points}"
    specs = [
        {
            "name": f"guess-{index}",
            "params": {"seed": index},
            "tags": {},
            "metrics": {
                "g": [(s, START + 1000 * s, float(s * (index + 1))) for s in range(last + 1)]
            },
        }
        for index in range(2)
    ]
    log_runs(mlflow_server.tracking_uri, experiment, specs)
    database = rg.load(mlflow_server.uri(), experiments=[experiment])
    view = View(metrics=("g",), group_by=(), align="bucket", points=points)
    pushed = rg.aggregate(database, view)
    assert_frame_equal(pushed, rg.aggregate(_in_memory(database), view), rel_tol=1e-12)
    per_bin = np.histogram(np.arange(last + 1.0), points, (0, last))[0]
    assert pushed.height == int((per_bin > 0).sum())


@pytest.mark.parametrize("x", ["step", "time"])
def test_the_per_run_statement_sends_what_the_single_scan_sends(server: Server, x: str) -> None:
    """MLflow's `(run_uuid, key, step)` index is there: each run's rows are grouped through it,
    the runs split over connections; the same sums, counts and buckets as one scan of the
    table grouped by (run, metric, bucket)."""
    from rungroup.sources.mlflow.postgres import SqlHistory

    database = rg.load(server.uri(), **SWEEP)
    provider = database.provider
    assert isinstance(provider, SqlHistory)
    ids = [str(i) for i in database.runs["id"]]
    answers = []
    for per_run in (True, False):
        provider._per_run = per_run
        sums = provider.bucket_sums(ids, ["loss", "acc", "absent"], x, 17)
        assert sums is not None
        order = np.lexsort((sums.bucket, sums.metric, sums.run))
        answers.append((sums, order))
    (split, a), (scan, b) = answers
    for field in ("run", "metric", "bucket", "counts", "dropped"):
        assert np.array_equal(getattr(split, field)[a], getattr(scan, field)[b]), field
    # the same values added in another order (index order, not the table's)
    assert np.allclose(split.sums[a], scan.sums[b], rtol=1e-13, atol=0)
    assert set(split.run.tolist()) == set(range(len(ids)))  # positions of every part's runs
    assert np.array_equal(split.lo, scan.lo, equal_nan=True)
    assert split.received == scan.received
    # the store MLflow made has the index the per-run statement reads through
    provider._per_run = None
    provider.bucket_sums(ids, ["loss"], x, 5)
    assert provider._per_run is True
