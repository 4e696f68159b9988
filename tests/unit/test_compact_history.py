"""The compact history reads back exactly as the long frame it replaces, whatever the query."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from rungroup import compact_history
from rungroup.compact_history import CompactBuilder
from rungroup.runs import HISTORY_SCHEMA

METRICS = ["loss", "acc", "lr", "val/loss"]

# a run: rows of (step, time, [(metric, value), ...]) in logged order
point = st.tuples(st.sampled_from(METRICS), st.sampled_from([0.5, -1.0, np.nan, np.inf, -0.0]))
row = st.tuples(
    st.integers(-3, 6),
    st.sampled_from([0.0, -0.0, 1.5, 1.5, 2.25]),  # loaders keep finite times only
    st.lists(point, min_size=1, max_size=5),
)
irregular_run = st.lists(row, max_size=8)


@st.composite
def regular_run(draw: st.DrawFn) -> list[tuple[int, float, list[tuple[str, float]]]]:
    """Every row logs the same metrics in the same order (a metric may repeat in a row)."""
    pattern = draw(st.lists(st.sampled_from(METRICS), min_size=1, max_size=4))
    rows = draw(st.integers(1, 6))
    values = st.sampled_from([0.5, -1.0, np.nan, -0.0, 3.0])
    return [(step, step * 0.5, [(m, draw(values)) for m in pattern]) for step in range(rows)]


run = st.one_of(irregular_run, regular_run())


def _long(
    runs: list[list[tuple[int, float, list[tuple[str, float]]]]], starts: list[float]
) -> pl.DataFrame:
    """The long frame as the store loader made it before: a row per point, logged order."""
    records = [
        (f"run{r}", metric, step, time, value, round(starts[r] * 1e6))
        for r, rows in enumerate(runs)
        for step, time, points in rows
        for metric, value in points
    ]
    frame = pl.DataFrame(
        records,
        schema={
            "run_id": pl.String,
            "metric": pl.String,
            "step": pl.Int64,
            "time": pl.Float64,
            "value": pl.Float64,
            "start_us": pl.Int64,
        },
        orient="row",
    )
    timestamp = (pl.col("start_us") + (pl.col("time") * 1e6).round().cast(pl.Int64)).cast(
        pl.Datetime("us", "UTC")
    )
    return frame.select(
        pl.col("run_id").cast(pl.Categorical),
        pl.col("metric").cast(pl.Categorical),
        "step",
        "time",
        timestamp.alias("timestamp"),
        "value",
    )


def _compact(
    runs: list[list[tuple[int, float, list[tuple[str, float]]]]], starts: list[float]
) -> pl.LazyFrame:
    builder = CompactBuilder()
    for rows in runs:
        steps = [step for step, _, points in rows for _ in points]
        times = [time for _, time, points in rows for _ in points]
        codes = [builder.code(metric) for _, _, points in rows for metric, _ in points]
        values = [value for _, _, points in rows for _, value in points]
        builder.add(
            np.asarray(steps, np.int64),
            np.asarray(times, np.float64),
            np.asarray(codes, np.uint32),
            np.asarray(values, np.float64),
        )
    return builder.build([f"run{r}" for r in range(len(runs))], starts).lazy()


QUERIES = [
    lambda f: f,
    lambda f: f.filter(pl.col("metric").is_in(["loss", "val/loss"])),
    lambda f: f.filter(pl.col("metric") == "acc").select("run_id", "step", "value"),
    lambda f: f.filter(pl.col("value") > 0).select("metric", "time"),
    lambda f: f.filter(pl.col("metric").is_in(["lr"]) & pl.col("value").is_finite()),
    lambda f: f.select(pl.col("run_id").to_physical().alias("r"), "step", "value"),
    lambda f: f.head(3),
    lambda f: f.filter(pl.col("metric") == "loss").head(2),
    lambda f: f.select("timestamp"),
    lambda f: f.select(pl.len()),
    lambda f: f.filter(pl.col("metric") == "acc").select(pl.len()),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(run, max_size=5), st.sampled_from([0, 1, 2]))
def test_every_query_reads_as_the_long_frame(runs: list, batch: int) -> None:
    starts = [1.7e9 + r * 0.123456 for r in range(len(runs))]
    with pytest.MonkeyPatch.context() as patch:
        # batches of a few points: runs cut at every batch boundary the generator may make
        patch.setattr(compact_history, "BATCH_POINTS", [1, 3, 1_000][batch])
        compact = _compact(runs, starts)
        expected = _long(runs, starts)
        for query in QUERIES:
            got = query(compact).collect()
            want = query(expected.lazy()).collect()
            # categories are global: compare the names, and physical codes only by position
            assert_frame_equal(got, want, categorical_as_str=True, check_exact=True)


def test_schema_metrics_and_bytes() -> None:
    builder = CompactBuilder()
    codes = np.asarray([builder.code(m) for m in ("a", "b")], np.uint32)
    steps = np.repeat(np.arange(1_000, dtype=np.int64), 2)
    builder.add(steps, steps * 0.5, np.tile(codes, 1_000), np.arange(2_000, dtype=np.float64))
    builder.code("never logged")
    builder.add(np.empty(0, np.int64), np.empty(0), np.empty(0, np.uint32), np.empty(0))
    compact = builder.build(["x", "y"], [0.0, 0.0])
    assert compact.lazy().collect_schema() == pl.Schema(HISTORY_SCHEMA)
    assert compact.logged == ["a", "b"]
    assert len(compact) == 2_000
    # a regular run: per point its value, per row of two points its step and time
    assert compact.nbytes == 2_000 * 8 + 1_000 * 16 + 2

    irregular = CompactBuilder()
    codes = np.asarray([irregular.code(m) for m in ("a", "b", "c")], np.uint32)
    # rows of two then one point: a code per point and a length per row besides
    irregular.add(steps[:3], steps[:3] * 0.5, codes[[0, 1, 2]], np.ones(3))
    assert irregular.build(["z"], [0.0]).nbytes == 3 * (8 + 1) + 2 * (16 + 4)


def test_codes_widen_past_256_metrics() -> None:
    builder = CompactBuilder()
    names = [f"m{i}" for i in range(300)]
    codes = np.asarray([builder.code(n) for n in names], np.uint32)
    builder.add(np.zeros(300, np.int64), np.zeros(300), codes, np.arange(300, dtype=np.float64))
    frame = builder.build(["run"], [0.0]).lazy().collect()
    assert frame["metric"].cast(pl.String).to_list() == names
    assert frame["value"].to_list() == list(range(300))
