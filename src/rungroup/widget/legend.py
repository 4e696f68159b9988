"""What the chart's legend says, and the per-row style fields its lines and bands are drawn with.

The legend is drawn by the browser from `legend()`'s entries (docs/widget.md, "Legend"): its
title names the keys that were grouped, each entry names its group as ``key=value`` pairs
(in reverse grouping only the keys whose values differ between the groups shown), its run
count (visible of total when runs are hidden) and its colour, the group's stable colour
(`rungroup.palette.group_colours`).

`styled()` adds the fields the chart draws with, so that the spec stays independent of which
series there are: ``rg_colour`` (the colour of the series; a group page's runs get shades of
their group's colour) and ``rg_part``, which stretches of a series have fewer runs than the
series has at most (bit 1: drawn as the full line and band, bit 2: as the thinner dashed
stretch, which also takes the full rows next to it, so that the two meet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from rungroup.chart import FULL_PART as FULL
from rungroup.chart import THIN_PART as THIN
from rungroup.chart import series_title, x_title
from rungroup.engine.grouping import Grouping
from rungroup.palette import colour_at, shades
from rungroup.runs import CONFIG_PREFIX
from rungroup.view import BAND_TABLE, View

#: Joins the key=value pairs of one entry.
PAIR_SEPARATOR = " · "
#: Grouping keys shown in entries without their "config." prefix (the title keeps it).
_PREFIXES = (CONFIG_PREFIX,)


def _short(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix) :]
    return key


def _text(value: Any) -> str:
    if value is None:
        return "(missing)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _shown_keys(grouping: Grouping, view: View) -> list[str]:
    """The keys an entry names: all grouped keys, or in reverse grouping (every config key
    but some) only those whose values differ between the groups."""
    keys = [k for k in grouping.key_columns if k in grouping.series.columns]
    if view.grouping and view.reverse:
        varying = [k for k in keys if grouping.series[k].n_unique() > 1]
        return varying or keys[:1]
    return keys


def legend(
    visible: Grouping,
    everyone: Grouping,
    view: View,
    colours: Mapping[str, str],
    order: Sequence[str],
    drawn: pl.DataFrame,
) -> dict[str, Any]:
    """The legend of a chart whose series are `order` (its drawing order): `visible` is the
    grouping of the runs drawn, `everyone` the same grouping with hidden runs included."""
    counts = dict(visible.members.group_by("_s").len().iter_rows())
    # nothing hidden: the same grouping, counted once
    totals = {} if everyone is visible else _counts_by_label(everyone)
    keys = _shown_keys(visible, view) if view.grouping else []
    entries: list[dict[str, Any]] = []
    by_label = {row["series"]: row for row in visible.series.iter_rows(named=True)}
    for index, label in enumerate(order):
        row = by_label.get(label)
        n = int(counts.get(row["_s"], 0)) if row is not None else 0
        if keys and row is not None:
            text = PAIR_SEPARATOR.join(f"{_short(k)}={_text(row[k])}" for k in keys)
        else:
            text = label
        entries.append(
            {
                "series": label,
                "label": text,
                "colour": colours.get(label) or colour_at(len(colours) + index),
                "n": n,
                "total": max(n, totals.get(label, n)),
            }
        )
    band = BAND_TABLE[view.band].title_of(view) if view.grouping else None
    return {
        "title": series_title(view),
        "entries": entries,
        # what the browser's tooltips call the line, the band and x
        "line": view.line if view.grouping else "value",
        "band": band,
        "x": x_title(view),
        "temporal": isinstance(drawn.schema["x"], pl.Datetime),
    }


def _counts_by_label(grouping: Grouping) -> dict[str, int]:
    counted = grouping.members.group_by("_s").len().join(grouping.series, on="_s")
    return {str(s): int(n) for s, n in counted.select("series", "len").iter_rows()}


def _parts(by: list[str]) -> pl.Expr:
    """``rg_part`` of each row: whether it is drawn in the full line and band, in the thin
    stretch where n is below the series' largest n, or both (a full row next to a thin one)."""
    reduced = pl.col("n") < pl.col("n").max().over(by)
    before = reduced.shift(1).over(by).fill_null(reduced)
    after = reduced.shift(-1).over(by).fill_null(reduced)
    full = ~reduced
    thin = reduced | before | after
    return (full.cast(pl.Int8) * FULL + thin.cast(pl.Int8) * THIN).alias("rg_part")


def _with_parts(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """`frame` with ``rg_part``; when no series has fewer runs anywhere (the usual case) every
    row is FULL, known from one window maximum instead of the neighbours' shifted windows."""
    reduced = frame.select((pl.col("n") < pl.col("n").max().over(by)).any()).item()
    if not reduced:
        return frame.with_columns(pl.lit(FULL, dtype=pl.Int8).alias("rg_part"))
    return frame.with_columns(_parts(by))


def styled(drawn: pl.DataFrame, colours: Mapping[str, str], *, group_page: bool) -> pl.DataFrame:
    """`drawn` with ``rg_colour`` and ``rg_part`` (see the module docs)."""
    labels = drawn["series"].cast(pl.String).unique(maintain_order=True).to_list()
    known = {
        label: colours.get(label) or colour_at(len(colours) + i) for i, label in enumerate(labels)
    }
    frame = drawn.with_columns(
        pl.col("series")
        .cast(pl.String)
        .replace_strict(known, return_dtype=pl.String)
        .alias("rg_colour")
    )
    if frame.height == 0:
        return frame.with_columns(pl.lit(None, dtype=pl.Int8).alias("rg_part"))
    if not group_page:
        return _with_parts(frame, ["series", "metric"])
    runs = frame.filter(pl.col("layer") == "run")
    group = _with_parts(frame.filter(pl.col("layer") != "run"), ["series", "metric"])
    names = runs["run"].unique(maintain_order=True).to_list()
    base = known[labels[0]] if labels else colour_at(0)
    run_colours = dict(zip(names, shades(base, len(names)), strict=True))
    runs = runs.with_columns(
        pl.col("run").replace_strict(run_colours, return_dtype=pl.String).alias("rg_colour"),
        pl.lit(FULL, dtype=pl.Int8).alias("rg_part"),
    )
    return pl.concat([group, runs])
