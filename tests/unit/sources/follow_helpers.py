"""Comparing what a follower returns with a fresh load of the same files."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from polars.testing import assert_frame_equal

import rungroup as rg


def sorted_history(runs: rg.Runs) -> pl.DataFrame:
    """The history as plain strings, in one order whatever order the points were read in."""
    return (
        runs.history.collect()
        .with_columns(pl.col("run_id").cast(pl.String), pl.col("metric").cast(pl.String))
        .sort("run_id", "metric", "step", "time", "value")
    )


def assert_same(followed: rg.Runs, fresh: rg.Runs, ignore: Sequence[str] = ()) -> None:
    """Equal runs tables (but the `ignore`d columns) and equal histories."""
    assert_frame_equal(followed.runs.drop(ignore), fresh.runs.drop(ignore))
    assert_frame_equal(sorted_history(followed), sorted_history(fresh))
