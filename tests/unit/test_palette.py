"""Stable group colours (rungroup.palette)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from rungroup.chart import chart
from rungroup.palette import PALETTE, colour_at, colours_for, group_colours, shades
from rungroup.runs import Runs
from rungroup.view import View


def _runs(lrs: list[float]) -> Runs:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    runs = pl.DataFrame(
        {
            "id": [f"r{i:02d}" for i in range(len(lrs))],
            "created_at": [start + timedelta(minutes=i) for i in range(len(lrs))],
            "config.lr": lrs,
        }
    )
    history = pl.DataFrame(
        {
            "run_id": runs["id"],
            "metric": ["loss"] * len(lrs),
            "step": [0] * len(lrs),
            "value": [1.0] * len(lrs),
        }
    )
    return Runs(runs, history)


def test_palette_has_twenty_distinct_colours_and_beyond_stays_distinct() -> None:
    assert len(set(PALETTE)) >= 20
    many = [colour_at(i) for i in range(100)]
    assert len(set(many)) == 100
    assert colour_at(3) == PALETTE[3]


def test_colours_follow_first_appearance() -> None:
    assert colours_for(["b", "a", "b", "c"]) == {"b": PALETTE[0], "a": PALETTE[1], "c": PALETTE[2]}


def test_shades_are_distinct() -> None:
    assert len(set(shades(PALETTE[0], 7))) == 7


def test_group_colours_do_not_move_when_runs_are_hidden() -> None:
    runs = _runs([0.1, 0.01, 0.05, 0.1, 0.01])
    view = View(group_by=("config.lr",))
    colours = group_colours(runs, view)
    assert list(colours) == ["0.1", "0.01", "0.05"]
    hidden = group_colours(runs, view.replace(hidden=frozenset({"r01", "r04"})))
    assert hidden == colours


def test_chart_uses_given_colours_for_a_subset() -> None:
    colours = {"a": PALETTE[0], "b": PALETTE[1], "c": PALETTE[2]}
    frame = pl.DataFrame(
        {
            "series": ["c", "c"],
            "metric": ["m", "m"],
            "x": [0.0, 1.0],
            "line": [1.0, 2.0],
            "lower": [1.0, 2.0],
            "upper": [1.0, 2.0],
            "n": [1, 1],
        }
    )
    spec = chart(frame, colours=colours).to_dict()
    text = str(spec)
    assert PALETTE[2] in text
    assert PALETTE[0] not in text
