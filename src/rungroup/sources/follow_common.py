"""What the followers of other trackers' sources share: the last value of every metric.

A fresh load derives each run's summary from its whole history (`runrecords.last_values`:
the value at the largest step, the last logged of those). A follower keeps one row per
(run, metric) instead and updates it with the new points of each poll, so that the summary
costs the size of the new points, not of the history.
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

from rungroup.sources.runrecords import CHUNK_SCHEMA

__all__ = ["LAST_SCHEMA", "last_chunk", "update_last"]

LAST_SCHEMA = {"run_id": pl.String, "metric": pl.String, "step": pl.Int64, "value": pl.Float64}


def update_last(last: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """`last` updated with `new` points (columns run_id, metric, step, value, in logged
    order); the new points come after the kept ones."""
    rows = new.select(pl.col("run_id", "metric").cast(pl.String), "step", "value")
    return (
        pl.concat([last, rows])
        .group_by("run_id", "metric", maintain_order=True)
        .agg(
            pl.col("step").max(),
            pl.col("value").filter(pl.col("step") == pl.col("step").max()).last(),
        )
    )


def last_chunk(last: pl.DataFrame, kept: Collection[str]) -> pl.DataFrame:
    """The last rows of the `kept` runs as a history chunk (for `runrecords.assemble`, whose
    summaries then equal those of the whole history)."""
    return last.filter(pl.col("run_id").is_in(list(kept))).select(
        "run_id",
        "metric",
        "step",
        pl.lit(None, pl.Float64).alias("time"),
        pl.lit(None, CHUNK_SCHEMA["timestamp"]).alias("timestamp"),
        "value",
    )
