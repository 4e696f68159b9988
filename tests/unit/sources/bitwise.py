"""Runs compared bit for bit: floats as their bit patterns, so that NaN, -0.0 and the last
bit count."""

from __future__ import annotations

import polars as pl

from rungroup.runs import Runs


def bits(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with its Float64 columns as their bit patterns."""
    return frame.with_columns(
        pl.col(c).reinterpret(signed=True) for c, t in frame.schema.items() if t == pl.Float64
    )


def assert_bit_identical(a: Runs, b: Runs) -> None:
    """The same runs table and history, schemas and every bit of every value."""
    assert a.runs.schema == b.runs.schema
    assert bits(a.runs).equals(bits(b.runs))
    ha, hb = a.history.collect(), b.history.collect()
    assert ha.schema == hb.schema
    assert bits(ha).equals(bits(hb))
