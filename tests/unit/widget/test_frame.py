"""The widget's frame (`widget_spec(...).frame`): Vega draws the panels' titles, axes and grid
from two extent rows per panel, and the browser draws the series over it with the frame's
scales (js/src/chart/series.ts). So the frame's axes must be exactly those the full spec
makes from every row: both are drawn here by vl-convert and their axis labels compared."""

from __future__ import annotations

import json
import re
from typing import Any

import polars as pl
import pytest
from widget_helpers import make_runs, read

from rungroup.chart import FRAME_PREFIX
from rungroup.widget import Explorer
from rungroup.widget.payload import chart_payload

LABELS = re.compile(r'<g class="mark-text role-axis-label"[^>]*>(.*?)</g>', re.DOTALL)
# a label of two lines (a wall-time axis's date under the time) is two tspans
TEXT = re.compile(r'<text[^>]*transform="([^"]*)"[^>]*>(.*?)</text>', re.DOTALL)


def axis_labels(spec: dict[str, Any]) -> list[list[tuple[str, str]]]:
    """Every axis's labels (text and place) as vl-convert draws `spec`."""
    import vl_convert

    svg = vl_convert.vegalite_to_svg(spec)
    return [TEXT.findall(group) for group in LABELS.findall(svg)]


def browser_rows(drawn: pl.DataFrame, fields: tuple[str, ...]) -> pl.DataFrame:
    """The chart rows as the browser has them: the Arrow payload, its float32 values widened
    to float64 as JavaScript numbers, wall times as epoch milliseconds."""
    rows = read(chart_payload(drawn, fields))
    return rows.with_columns(
        pl.col(pl.Float32).cast(pl.Float64),
        pl.col(pl.Categorical).cast(pl.String),
        pl.col(pl.Datetime).dt.epoch("ms").cast(pl.Float64),
    )


def split(spec: dict[str, Any], rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The rows of each dataset of the full spec (each row to the first it matches)."""
    left = rows.with_row_index("_row")
    parts: dict[str, pl.DataFrame] = {}
    for dataset in spec["usermeta"]["rungroup"]["datasets"]:
        match = pl.all_horizontal(
            [pl.col(field) == value for field, value in dataset["where"].items()] or [pl.lit(True)]
        )
        parts[dataset["name"]] = left.filter(match).drop("_row")
        left = left.filter(~match)
    return parts


def extents(spec: dict[str, Any], parts: dict[str, pl.DataFrame]) -> dict[str, list[dict]]:
    """Each panel's lowest and highest x and y over the values its layers draw, computed here
    with Polars (the browser's is js/src/chart/tracks.ts)."""
    meta = spec["usermeta"]["rungroup"]
    fields = [
        "line",
        *(["lower", "upper"] if meta["grouped"] else []),
        *(["raw"] if meta["raw"] else []),
    ]
    by_metric: dict[str, list[pl.DataFrame]] = {}
    for dataset in meta["datasets"]:
        by_metric.setdefault(dataset["where"]["metric"], []).append(parts[dataset["name"]])
    out: dict[str, list[dict]] = {}
    for number, frames in enumerate(by_metric.values()):
        values = pl.concat(frames).select(
            "x", *[pl.col(f).cast(pl.Float64).fill_nan(None) for f in fields]
        )
        if meta["log_y"]:
            values = values.with_columns(pl.when(pl.col(f) > 0).then(pl.col(f)) for f in fields)
        values = values.filter(pl.any_horizontal(pl.col(f).is_not_null() for f in fields))
        ys = pl.concat([values[f].drop_nulls() for f in fields])
        out[f"{FRAME_PREFIX}{number}"] = [
            {"x": values["x"].min(), "y": ys.min()},
            {"x": values["x"].max(), "y": ys.max()},
        ]
    return out


def with_data(spec: dict[str, Any], datasets: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "datasets": {**spec.get("datasets", {}), **datasets}}


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"log_y": True},
        {"x": "timestamp"},
        {"smoothing": "ema", "band": "minmax"},
        {"grouping": False},
        {"x": "time", "band": "ci"},
    ],
    ids=["steps", "log-y", "wall-time", "smoothed", "runs", "relative-time"],
)
def test_the_frame_has_the_axes_of_the_full_spec(settings: dict[str, Any]) -> None:
    widget = Explorer(make_runs(), group_by=["config.lr"], **settings)
    frame = widget._frame()
    built = frame.spec
    rows = browser_rows(frame.drawn, built.fields)
    parts = split(built.spec, rows)
    full = with_data(built.spec, {name: json.loads(p.write_json()) for name, p in parts.items()})
    drawn = with_data(built.frame, extents(built.spec, parts))
    labels = axis_labels(full)
    assert len(labels) == 2 * len(frame.drawn["metric"].unique())  # x and y of every panel
    assert all(labels)
    assert axis_labels(drawn) == labels


def test_the_frame_draws_no_series_and_reads_only_its_extents() -> None:
    widget = Explorer(make_runs(), group_by=["config.lr"], smoothing="ema")
    built = widget._frame().spec
    panels = built.frame["concat"]
    assert len(panels) == len(built.spec["concat"])
    assert [panel["data"]["name"] for panel in panels] == [
        f"{FRAME_PREFIX}{i}" for i in range(len(panels))
    ]
    marks = [layer["mark"] for panel in panels for layer in panel["layer"]]
    assert all(mark == {"type": "point", "opacity": 0} for mark in marks)
    # the same titles as the full spec's panels
    assert [p["title"] for p in panels] == [p["title"] for p in built.spec["concat"]]
    # what the layers draw, for the browser's series canvas
    meta = built.frame["usermeta"]["rungroup"]
    assert meta == built.spec["usermeta"]["rungroup"] and meta["raw"] and meta["grouped"]
