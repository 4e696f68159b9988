"""`chart(aggregate)`: the grouped line-and-band chart, built from the Aggregate frame only.

What is drawn is what is exported: the chart reads the columns ``series``, ``metric``, ``x``,
``line``, ``lower``, ``upper`` and ``n`` of the frame and nothing else. Per series a band (an
area from ``lower`` to ``upper``, light) and a line (``line``) share one colour; one panel per
metric, titled with the metric's name; a tooltip shows series, x, line, lower, upper and n;
clicking a legend entry isolates that series (shift-click adds more). With grouping off every
series is one run, whose band has collapsed onto its line, so only lines are drawn.

The rows travel inline as ONE named Vega dataset, ``DATA_NAME`` ("rungroup"), declared once at
the top of the spec and shared by every panel (each filters its metric). A front end that keeps
the Vega view can therefore swap the data in place, ``view.data("rungroup", rows).run()``,
without re-embedding; ``chart(frame, inline=False)`` leaves the rows out altogether (the spec
then only names the dataset) for a front end that ships them separately, e.g. as Arrow.

Save to PNG or SVG with Altair (vl-convert does the rendering): ``chart(frame).save("a.png")``.
"""

from __future__ import annotations

import json
from typing import Any

import altair as alt
import polars as pl

from rungroup.engine.recipe import recipe_of
from rungroup.engine.stats import BAND_FORMULAS
from rungroup.view import View

#: The name of the chart's one dataset.
DATA_NAME = "rungroup"
#: The columns the chart reads from the aggregate frame.
CHART_COLUMNS = ("series", "metric", "x", "line", "lower", "upper", "n")
BAND_OPACITY = 0.2

_X_TITLES = {"step": "step", "time": "time (s)", "timestamp": "time"}


def _field(name: str) -> str:
    """A field name as Vega-Lite reads it (dots and brackets would mean nesting)."""
    return name.replace(".", "\\.").replace("[", "\\[").replace("]", "\\]")


def _y_title(metric: str, view: View | None) -> str:
    if view is None or not view.grouping:
        return metric
    lower, upper = BAND_FORMULAS[view.band]
    if view.band == "none":
        return f"{metric} ({view.line})"
    if view.band in ("std", "stderr"):
        band = f"mean ± {view.band}"
    elif view.band == "ci":
        band = f"{view.ci_level:.0%} CI ({view.ci_method})"
    elif view.band == "quantile":
        band = f"q{view.quantiles[0]:g}–q{view.quantiles[1]:g}"
    else:
        band = f"{lower}–{upper}"
    return f"{metric} ({view.line}, band: {band})"


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(frame.write_json())
    return rows


def chart(
    aggregate: pl.DataFrame,
    *,
    view: View | None = None,
    log_y: bool | None = None,
    x_title: str | None = None,
    width: int = 360,
    height: int = 240,
    columns: int = 2,
    inline: bool = True,
) -> alt.ConcatChart:
    """An Altair chart of `aggregate` (a frame from `rungroup.aggregate`).

    `view` (default: the frame's recipe, if it has one) only supplies titles and the default of
    `log_y`; the data come from the frame. `log_y` puts y on a log scale. `columns` panels per
    row. `inline=False` leaves the rows out of the spec (see the module docs).
    """
    if not isinstance(aggregate, pl.DataFrame):
        raise TypeError(f"chart() takes a Polars DataFrame, got {type(aggregate).__name__}")
    missing = [c for c in CHART_COLUMNS if c not in aggregate.columns]
    if missing:
        raise ValueError(
            f"chart() needs the aggregate columns {', '.join(CHART_COLUMNS)}; "
            f"missing: {', '.join(missing)}"
        )
    view = view if view is not None else recipe_of(aggregate)
    log = bool(view.log_y) if log_y is None and view is not None else bool(log_y)
    temporal = isinstance(aggregate.schema["x"], pl.Datetime)
    if x_title is None:
        x_title = "x" if view is None else _X_TITLES.get(view.x, view.x)
    grouped = (
        view.grouping
        if view is not None
        else bool(aggregate.height == 0 or (aggregate["lower"] != aggregate["upper"]).any())
    )
    frame = aggregate.select(CHART_COLUMNS)
    data = alt.InlineData(values=_rows(frame) if inline else [], name=DATA_NAME)
    metrics = frame["metric"].unique(maintain_order=True).to_list() or ["(no data)"]

    pick = alt.selection_point(fields=["series"], bind="legend", name="isolate")
    series_order = frame["series"].unique(maintain_order=True).to_list()
    colour = alt.Color("series:N", title="series", sort=series_order)
    x = alt.X(f"x:{'T' if temporal else 'Q'}", title=x_title)
    y_scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    tooltip = [
        alt.Tooltip("series:N"),
        alt.Tooltip(f"x:{'T' if temporal else 'Q'}", title=x_title),
        alt.Tooltip("line:Q", format=".6g"),
        alt.Tooltip("lower:Q", format=".6g"),
        alt.Tooltip("upper:Q", format=".6g"),
        alt.Tooltip("n:Q"),
    ]
    panels: list[Any] = []
    for metric in metrics:
        # a field predicate rather than an expression: the widget reads it to give each panel
        # its own dataset (`rungroup.protocol.prepare_spec`)
        base = alt.Chart().transform_filter(alt.FieldEqualPredicate(field="metric", equal=metric))
        y = alt.Y("line:Q", title=_y_title(metric, view), scale=y_scale)
        line = base.mark_line(strokeWidth=1.6).encode(
            x=x,
            y=y,
            color=colour,
            detail="series:N",
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
        )
        hover = base.mark_circle(size=40, opacity=0).encode(x=x, y=y, color=colour, tooltip=tooltip)
        layers = [line, hover]
        if grouped:
            band = base.mark_area(opacity=BAND_OPACITY, interpolate="linear").encode(
                x=x,
                y=alt.Y("lower:Q", scale=y_scale, title=_y_title(metric, view)),
                y2="upper:Q",
                color=colour,
                detail="series:N",
                opacity=alt.condition(pick, alt.value(BAND_OPACITY), alt.value(0.03)),
            )
            layers.insert(0, band)
        panels.append(
            alt.layer(*layers).properties(title=metric, width=width, height=height).add_params(pick)
            if not panels
            else alt.layer(*layers).properties(title=metric, width=width, height=height)
        )
    combined = alt.concat(*panels, columns=columns, data=data)
    result: alt.ConcatChart = combined.resolve_scale(color="shared")
    return result
