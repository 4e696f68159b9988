"""Bulk data for the browser as Arrow IPC: the chart's rows, made as small as drawing allows."""

from __future__ import annotations

import io
from collections.abc import Iterable

import polars as pl

from rungroup.chart import ORDER_FIELD
from rungroup.engine.stats import STAT_COLUMNS

#: Statistics that are drawn; they travel as float32 (7 significant digits, half the bytes).
_FLOAT32 = ("line", "lower", "upper", "raw", *STAT_COLUMNS)


def ipc(frame: pl.DataFrame) -> bytes:
    """Arrow IPC *stream* bytes in the oldest layout (plain/large strings, no views).

    The stream format, not the file format: flechette reads Polars' dictionary batches
    (categorical labels) from a stream, but not from Polars' file footer.
    """
    buffer = io.BytesIO()
    frame.write_ipc_stream(buffer, compression="uncompressed", compat_level=pl.CompatLevel.oldest())
    return buffer.getvalue()


def chart_payload(drawn: pl.DataFrame, fields: Iterable[str]) -> bytes:
    """The chart's rows as Arrow IPC: only the `fields` the spec reads (`WidgetSpec.fields`),
    statistics and x as float32, labels dictionary-encoded, counts as small integers, and
    `ORDER_FIELD`, each series' place in the colour order (its first appearance in `drawn`)."""
    wanted = set(fields)
    frame = drawn.select(c for c in drawn.columns if c in wanted)
    if ORDER_FIELD in wanted:
        order = drawn["series"].unique(maintain_order=True)
        frame = frame.with_columns(
            pl.col("series")
            .replace_strict(order, pl.int_range(order.len(), eager=True), default=None)
            .cast(pl.Int16 if order.len() < 2**15 else pl.Int32)
            .alias(ORDER_FIELD)
        )
    casts: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if name in _FLOAT32 or (name == "x" and dtype.is_float()):
            casts.append(pl.col(name).cast(pl.Float32))
        elif name == "x" and dtype.is_integer():
            casts.append(pl.col(name).cast(pl.Float64 if _wide(frame[name]) else pl.Float32))
        elif dtype == pl.String:
            casts.append(pl.col(name).cast(pl.Categorical))
        elif name == "n" and dtype.is_integer():
            small = frame.height == 0 or bool(frame[name].max() < 2**15)  # type: ignore[operator]
            casts.append(pl.col(name).cast(pl.Int16 if small else pl.Int32))
    return ipc(frame.with_columns(casts) if casts else frame)


def _wide(column: pl.Series) -> bool:
    """Integers that float32 cannot hold exactly (beyond 2**24)."""
    if column.len() == 0:
        return False
    return bool(column.abs().max() > 2**24)  # type: ignore[operator]
