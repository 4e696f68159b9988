"""Stable series colours: a group's colour is a function of its identity, not of what is shown.

A colour is picked by the group's place in the order of first appearance among *all* runs
(by ``created_at``, then ``id``), hidden ones included. Hiding, filtering, ``min_runs`` and the
group page therefore leave every group's colour alone, and a live update that brings a new
group gives it the next place instead of recolouring the old ones.

`PALETTE` has 20 colours, chosen from Okabe & Ito's and Paul Tol's colour-blind-safe schemes
(the first eight are Okabe-Ito without black, so the common case of a few groups is the
best-separated one). Past 20 groups, `colour_at` goes round the palette again, each round
mixed a further step towards white or black in turn (never the same colour twice below 20 x 5
groups); the assignment stays deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from rungroup.engine.grouping import group_runs
from rungroup.runs import Runs
from rungroup.view import View

PALETTE: tuple[str, ...] = (
    # Okabe-Ito
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#999999",
    # Paul Tol, muted
    "#332288",
    "#88ccee",
    "#44aa99",
    "#117733",
    "#999933",
    "#ddcc77",
    "#cc6677",
    "#882255",
    "#aa4499",
    # Paul Tol, bright/dark
    "#ee6677",
    "#228833",
    "#4477aa",
)

#: How far each further round past the palette moves a colour towards white or black.
_ROUND_STEP = 0.28


def _mix(colour: str, target: int, share: float) -> str:
    channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(c + (target - c) * share) for c in channels]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def colour_at(index: int) -> str:
    """The colour of the group in place `index` (0-based) of the order of first appearance."""
    if index < 0:
        raise ValueError(f"a colour index is 0 or more, got {index}")
    base = PALETTE[index % len(PALETTE)]
    round_ = index // len(PALETTE)
    if round_ == 0:
        return base
    # Rounds alternate lighter and darker, each pair a step further, so the 21st group is
    # a light shade of the first and the 41st a dark one.
    step = (round_ + 1) // 2
    share = min(0.85, _ROUND_STEP * step)
    return _mix(base, 255 if round_ % 2 else 0, share)


def shades(colour: str, count: int) -> list[str]:
    """`count` shades of `colour` (a group page's runs), from darker to lighter, all distinct
    from white so they stay visible on a light page."""
    if count <= 1:
        return [colour][:count]
    return [
        _mix(colour, 0, 0.35 * (1 - 2 * i / (count - 1)))
        if i < (count - 1) / 2
        else _mix(colour, 255, 0.45 * (2 * i / (count - 1) - 1))
        for i in range(count)
    ]


def colours_for(labels: Iterable[str]) -> dict[str, str]:
    """Each label's colour by its place among `labels` (repeats keep their first place)."""
    colours: dict[str, str] = {}
    for label in labels:
        if label not in colours:
            colours[label] = colour_at(len(colours))
    return colours


def group_colours(runs: Runs, view: View) -> dict[str, str]:
    """The colour of every series label `view` makes of `runs`, hidden runs included.

    This is the one function that gives a group its colour: the chart, the report, the
    exports and the widget's table swatches all read it.
    """
    grouping = group_runs(runs, view.replace(hidden=frozenset()))
    first = (
        grouping.members.join(grouping.runs.select("_r", "run_id"), on="_r")
        .join(
            runs.runs.select(pl.col("id").alias("run_id"), "created_at"),
            on="run_id",
            how="left",
        )
        .group_by("_s")
        .agg(pl.col("created_at").min(), pl.col("run_id").min())
        .join(grouping.series.select("_s", "series"), on="_s")
        .sort("created_at", "run_id", nulls_last=True)
    )
    return colours_for(first["series"].to_list())
