"""The grouped line-and-band chart, built from the Aggregate frame only, for two targets.

What is drawn is what is exported: the chart reads the columns ``series``, ``metric``, ``x``,
``line``, ``lower``, ``upper`` and ``n`` of the frame and nothing else. Per series a band (an
area from ``lower`` to ``upper``, light) and a line (``line``) share one colour; one panel per
metric, titled with the metric's name; a tooltip shows series, x, line, lower, upper and n;
clicking a legend entry isolates that series (shift-click adds more). With grouping off every
series is one run, whose band has collapsed onto its line, so only lines are drawn.

- `chart(frame)` is the chart users and the report get: a plain Altair chart whose rows travel
  inline as ONE named dataset, ``DATA_NAME`` ("rungroup"), shared by every panel (each filters
  its metric); ``inline=False`` leaves the rows out. Save it with Altair (vl-convert renders):
  ``chart(frame).save("a.png")``.
- `widget_spec(frame, view)` is the Explorer's spec, built for the browser that feeds it
  Arrow rows (docs/widget.md, "Charts"): one dataset per panel (and per layer of a group
  page) listed in ``usermeta.rungroup.datasets``, the parameters the browser sets (isolated
  series, band opacity), the colour order as a data field (``rg_order``) and fixed view
  names, so that the spec depends on the chart's shape and not on which runs form which
  series. On a group page each panel also
  draws the group's runs as thin lines under the group's line and band.

Both are built by the same panel code with Altair and turned into a dict once; nothing edits
a finished spec.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import altair as alt
import polars as pl

from rungroup.engine import recipe_of
from rungroup.palette import colour_at
from rungroup.view import View, smoothing_text, y_title

#: The name of the user chart's one dataset.
DATA_NAME = "rungroup"
#: The columns the chart reads from the aggregate frame.
CHART_COLUMNS = ("series", "metric", "x", "line", "lower", "upper", "n")
BAND_OPACITY = 0.2

#: Data field holding each series' place in the colour order (see `rungroup.widget.payload`).
ORDER_FIELD = "rg_order"
#: Datasets of the widget spec: one per panel and layer.
PART_PREFIX = "rg_data_"
#: The thin run lines of a group page, the unsmoothed lines and the dashed stretches of fewer
#: runs (numbered per panel): named so that the browser's scenegraph counts can tell them apart.
RUNS_UNIT = "rg_runs"
RAW_UNIT = "rg_raw"
THIN_UNIT = "rg_thin"
#: Fields of the widget's chart rows besides `CHART_COLUMNS`: the group page's layer and run.
PAGE_COLUMNS = ("layer", "run")
#: Datasets of the widget's frame spec: each panel's extent (two rows, `x` and `y`).
FRAME_PREFIX = "rg_frame_"
#: Data fields of the widget's rows: each series' colour, which stretches of it have fewer runs
#: than its most (`rungroup.widget.legend`), and the unsmoothed line behind a smoothed one.
COLOUR_FIELD = "rg_colour"
PART_FIELD = "rg_part"
RAW_FIELD = "raw"
#: Parameters the browser sets: the isolated series (a list, or null) and the band's opacity
#: (higher on a dark theme).
ISOLATED_PARAM = "rg_isolated"
#: Bits of `PART_FIELD` (`rungroup.widget.legend`): drawn full, drawn thin (fewer runs).
FULL_PART = 1
THIN_PART = 2
BAND_PARAM = "rg_band"

_X_TITLES = {"step": "step", "time": "time (s)", "timestamp": "time"}
_NOT_ISOLATED = f"{ISOLATED_PARAM} !== null && indexof({ISOLATED_PARAM}, datum.series) < 0"
#: The share of the band's opacity where a series has fewer runs than its most.
_THIN_BAND = 0.35


def series_title(view: View | None) -> str:
    """What the series are: the legend's title (the grouped keys)."""
    if view is None:
        return "series"
    if not view.grouping:
        return "run"
    if view.reverse:
        return "all config except " + " / ".join(view.group_by) if view.group_by else "config"
    return " / ".join(view.group_by) if view.group_by else "all runs"


def x_title(view: View) -> str:
    """The x axis's title for `view`."""
    return _X_TITLES.get(view.x, view.x)


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(frame.write_json())
    return rows


@dataclass(frozen=True)
class _Axes:
    """What every panel of one chart shares."""

    view: View | None
    x: Any
    x_title: str
    temporal: bool
    y_scale: alt.Scale
    colour: alt.Color
    tooltip: list[alt.Tooltip]
    grouped: bool
    width: int
    height: int
    #: How lines and bands get their colour, and the field that splits them into series.
    path_colour: Any
    path_detail: str


def _axes(
    aggregate: pl.DataFrame,
    view: View | None,
    log: bool,
    x_title: str | None,
    colour_sort: Any,
    width: int,
    height: int,
    widget: bool = False,
    colours: dict[str, str] | None = None,
) -> _Axes:
    temporal = isinstance(aggregate.schema["x"], pl.Datetime)
    if x_title is None:
        x_title = "x" if view is None else _X_TITLES.get(view.x, view.x)
    grouped = (
        view.grouping
        if view is not None
        else bool(aggregate.height == 0 or (aggregate["lower"] != aggregate["upper"]).any())
    )
    x_type = "T" if temporal else "Q"
    # A fixed domain and range: each series keeps its group's colour (rungroup.palette)
    # whichever others are drawn.
    scale = (
        alt.Scale(domain=list(colours), range=list(colours.values())) if colours else alt.Undefined
    )
    # the legend's symbols in the lines' colour at full opacity (not the band's pale fill)
    legend = alt.Legend(symbolType="stroke", symbolOpacity=1, symbolStrokeWidth=3)
    colour = alt.Color(
        "series:N", title=series_title(view), sort=colour_sort, scale=scale, legend=legend
    )
    return _Axes(
        view=view,
        x=alt.X(f"x:{x_type}", title=x_title),
        x_title=x_title,
        temporal=temporal,
        y_scale=alt.Scale(type="log") if log else alt.Scale(zero=False),
        colour=colour,
        tooltip=[
            alt.Tooltip("series:N"),
            alt.Tooltip(f"x:{x_type}", title=x_title),
            alt.Tooltip("line:Q", format=".6g"),
            alt.Tooltip("lower:Q", format=".6g"),
            alt.Tooltip("upper:Q", format=".6g"),
            alt.Tooltip("n:Q"),
        ],
        grouped=grouped,
        width=width,
        height=height,
        # The widget's lines and bands are split by colour order, not by label, and drawn in
        # that order, as the browser's series canvas draws them (js/src/chart/series.ts).
        # The colour is read from the row (the group's stable colour), not mapped by a scale.
        path_colour={"value": {"expr": f"datum.{COLOUR_FIELD}"}} if widget else colour,
        path_detail=f"{ORDER_FIELD}:N" if widget else "series:N",
    )


def _panel(
    axes: _Axes,
    metric: str,
    line_base: alt.Chart,
    tip_base: alt.Chart,
    line_opacity: Any,
    band_opacity: Any,
) -> list[alt.Chart]:
    """One panel's layers: band (when grouped), line, and the invisible tooltip points."""
    y = alt.Y("line:Q", title=y_title(metric, axes.view), scale=axes.y_scale)
    line = line_base.mark_line(strokeWidth=1.6).encode(
        x=axes.x, y=y, color=axes.path_colour, detail=axes.path_detail, opacity=line_opacity
    )
    hover = tip_base.mark_circle(size=40, opacity=0).encode(
        x=axes.x, y=y, color=axes.colour, tooltip=axes.tooltip
    )
    if not axes.grouped:
        return [line, hover]
    band = line_base.mark_area(opacity=BAND_OPACITY, interpolate="linear").encode(
        x=axes.x,
        y=alt.Y("lower:Q", scale=axes.y_scale, title=y_title(metric, axes.view)),
        y2="upper:Q",
        color=axes.path_colour,
        detail=axes.path_detail,
        opacity=band_opacity,
    )
    return [band, line, hover]


def _check_frame(aggregate: Any, name: str) -> None:
    if not isinstance(aggregate, pl.DataFrame):
        raise TypeError(f"{name}() takes a Polars DataFrame, got {type(aggregate).__name__}")
    missing = [c for c in CHART_COLUMNS if c not in aggregate.columns]
    if missing:
        raise ValueError(
            f"{name}() needs the aggregate columns {', '.join(CHART_COLUMNS)}; "
            f"missing: {', '.join(missing)}"
        )


def _metrics(aggregate: pl.DataFrame) -> list[str]:
    metrics: list[str] = aggregate["metric"].unique(maintain_order=True).to_list()
    return metrics or ["(no data)"]


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
    colours: Mapping[str, str] | None = None,
) -> alt.ConcatChart:
    """An Altair chart of `aggregate` (a frame from `rungroup.aggregate`).

    `view` (default: the frame's recipe, if it has one) only supplies titles and the default of
    `log_y`; the data come from the frame. `log_y` puts y on a log scale. `columns` panels per
    row. `inline=False` leaves the rows out of the spec (see the module docs). `colours`: each
    series label's colour (`rungroup.palette.group_colours`, so that a chart of some groups
    colours them as a chart of all would); by default the palette in order of appearance.
    """
    _check_frame(aggregate, "chart")
    view = view if view is not None else recipe_of(aggregate)
    log = bool(view.log_y) if log_y is None and view is not None else bool(log_y)
    frame = aggregate.select(CHART_COLUMNS)
    order = frame["series"].unique(maintain_order=True).to_list()
    known = dict(colours) if colours is not None else {}
    # A label the mapping lacks gets a palette colour after those the mapping uses.
    missing = [label for label in order if label not in known]
    drawn_colours = {
        label: known[label] if label in known else colour_at(len(known) + missing.index(label))
        for label in order
    }
    axes = _axes(frame, view, log, x_title, order, width, height, colours=drawn_colours)
    data = alt.InlineData(values=_rows(frame) if inline else [], name=DATA_NAME)
    pick = alt.selection_point(fields=["series"], bind="legend", name="isolate")
    panels: list[Any] = []
    for metric in _metrics(frame):
        base = alt.Chart().transform_filter(alt.FieldEqualPredicate(field="metric", equal=metric))
        layers = _panel(
            axes,
            metric,
            base,
            base,
            alt.condition(pick, alt.value(1.0), alt.value(0.12)),
            alt.condition(pick, alt.value(BAND_OPACITY), alt.value(0.03)),
        )
        layered = alt.layer(*layers).properties(title=metric, width=width, height=height)
        panels.append(layered if panels else layered.add_params(pick))
    combined = alt.concat(*panels, columns=columns, data=data)
    result: alt.ConcatChart = combined.resolve_scale(color="shared")
    return result


@dataclass(frozen=True)
class WidgetSpec:
    """The Explorer's Vega-Lite spec and what the widget needs to know about it."""

    #: Every mark of every panel: what exports and images of the chart draw.
    spec: dict[str, Any]
    #: The panels without their series: titles, axes and grid, with each panel's scales set
    #: by its extent rows. The browser draws the lines and bands over it on a canvas of its
    #: own (js/src/chart/series.ts): Vega's dataflow over every drawn point took half of a
    #: repaint. Same datasets as `spec`, plus `FRAME_PREFIX` + panel number for the extents.
    frame: dict[str, Any]
    #: A digest of the spec: the browser embeds again only when it changes.
    key: str
    #: The frame columns the spec reads (the chart rows carry these and no others).
    fields: tuple[str, ...]


def _opacity(level: float | str, rest: float | str) -> dict[str, Any]:
    """`rest` for a series left out by the legend's isolation, else `level` (a number, or an
    expression of the browser's parameters). A hovered series is brought forward by the
    browser over the drawn chart (js/src/chart/emphasis.ts), not by the spec: a parameter
    here would have Vega encode and paint every item of every panel again on each hover."""

    def value(v: float | str) -> Any:
        return {"expr": v} if isinstance(v, str) else v

    return {"condition": [{"test": _NOT_ISOLATED, "value": value(rest)}], "value": value(level)}


class _Datasets:
    """Numbers the widget spec's datasets in the order the units read them."""

    def __init__(self) -> None:
        self.listed: list[dict[str, Any]] = []
        self.parts = 0

    def part(self, where: dict[str, str]) -> tuple[str, alt.Chart]:
        name = f"{PART_PREFIX}{self.parts}"
        self.parts += 1
        self.listed.append({"name": name, "where": where})
        return name, _named(name)


def _named(name: str) -> alt.Chart:
    # parse: null: the rows arrive typed (Arrow), so no per-row toNumber/toDate formula
    data = alt.NamedData(name=name, format={"parse": None})
    return alt.Chart(data)


def _runs_layer(axes: _Axes, metric: str, base: alt.Chart, number: int) -> alt.Chart:
    """A group page's thin run lines, one per run, in the group's colour."""
    y = alt.Y("line:Q", title=y_title(metric, axes.view), scale=axes.y_scale)
    tooltip = [
        alt.Tooltip("run:N", title="run"),
        alt.Tooltip(f"x:{'T' if axes.temporal else 'Q'}"),
        alt.Tooltip("line:Q", title="value", format=".6g"),
    ]
    layer: alt.Chart = (
        base.mark_line(strokeWidth=1, opacity=0.4, clip=True)
        .encode(
            x=axes.x,
            y=y,
            color=axes.path_colour,
            detail="run:N",
            tooltip=tooltip,
        )
        .properties(name=f"{RUNS_UNIT}_{number}")
    )
    return layer


def _part(bit: int, field: str) -> str:
    return f"(datum.{PART_FIELD} & {bit}) ? datum.{field} : null"


def _widget_panel(
    axes: _Axes, metric: str, base: alt.Chart, number: int, *, raw: bool, thin: bool
) -> list[alt.Chart]:
    """One panel's lines and bands in the widget: where a series has fewer runs than its most,
    its band is lighter and its line dashed (``rg_part``; those layers only when `thin`: some
    series has such a stretch); a smoothed line has its unsmoothed line faintly behind it.
    Paths break at missing values instead of joining across them."""
    parts = ((FULL_PART, 1.0, None), (THIN_PART, _THIN_BAND, [4, 3]))[: 2 if thin else 1]
    title = y_title(metric, axes.view)
    # log axes label 1, 2, 5 per decade at most ("~g": no trailing zeros)
    y_axis = (
        alt.Axis(labelOverlap=True, format="~g")
        if axes.view and axes.view.log_y
        else alt.Axis(labelOverlap=True)
    )
    # Without stretches of fewer runs the layers read the fields as they are: a calculate per
    # layer and row, and paths broken at nulls, cost Vega time on every repaint.
    invalid: Any = "break-paths-show-domains" if thin else alt.Undefined

    def split(bit: int, chart: alt.Chart, **fields: str) -> tuple[alt.Chart, dict[str, str]]:
        """`chart` reading `fields` (name -> source field) of the rows in part `bit`."""
        if not thin:
            return chart, fields
        made = {f"rg_{name}": _part(bit, source) for name, source in fields.items()}
        return chart.transform_calculate(**made), {name: f"rg_{name}" for name in fields}

    layers: list[alt.Chart] = []
    if axes.grouped:
        for bit, share, _ in parts:
            level = BAND_PARAM if share == 1.0 else f"{BAND_PARAM} * {share}"
            chart, names = split(bit, base, lo="lower", hi="upper")
            layers.append(
                chart.mark_area(interpolate="linear", invalid=invalid).encode(
                    x=axes.x,
                    y=alt.Y(f"{names['lo']}:Q", title=title, scale=axes.y_scale),
                    y2=f"{names['hi']}:Q",
                    color=axes.path_colour,
                    detail=axes.path_detail,
                    opacity=_opacity(level, f"{BAND_PARAM} * 0.15"),
                )
            )
    if raw:
        layers.append(
            base.mark_line(strokeWidth=1, invalid="break-paths-show-domains")
            .encode(
                x=axes.x,
                y=alt.Y(f"{RAW_FIELD}:Q", title=title, scale=axes.y_scale, axis=y_axis),
                color=axes.path_colour,
                detail=axes.path_detail,
                opacity=_opacity(0.3, 0.04),
            )
            .properties(name=f"{RAW_UNIT}_{number}")
        )
    for bit, _, dash in parts:
        chart, names = split(bit, base, y="line")
        line = chart.mark_line(
            strokeWidth=1.8, strokeDash=dash or alt.Undefined, invalid=invalid
        ).encode(
            x=axes.x,
            y=alt.Y(f"{names['y']}:Q", title=title, scale=axes.y_scale, axis=y_axis),
            color=axes.path_colour,
            detail=axes.path_detail,
            opacity=_opacity(1.0, 0.12),
        )
        layers.append(line if bit == FULL_PART else line.properties(name=f"{THIN_UNIT}_{number}"))
    return layers


def _frame_panel(axes: _Axes, metric: str, number: int) -> alt.Chart:
    """One panel of the frame spec: an invisible mark over the panel's two extent rows (its
    lowest and highest x and y, computed by the browser from the rows it draws), so that
    Vega-Lite makes the same scales, axes and grid as the full panel's layers would."""
    y_axis = (
        alt.Axis(labelOverlap=True, format="~g")
        if axes.view and axes.view.log_y
        else alt.Axis(labelOverlap=True)
    )
    y = alt.Y("y:Q", title=y_title(metric, axes.view), scale=axes.y_scale, axis=y_axis)
    mark: alt.Chart = _named(f"{FRAME_PREFIX}{number}").mark_point(opacity=0).encode(x=axes.x, y=y)
    return mark


#: Wall-time spans (seconds) up to which the axis shows seconds, the time of day, the date.
_SECONDS_SPAN = 600.0
_DAY_SPAN = 2 * 86400.0
_MONTHS_SPAN = 90 * 86400.0


def _x_axis(axes: _Axes, span_seconds: float | None) -> alt.X:
    """x with labels that do not collide; wall time formatted for the span it covers."""
    if not axes.temporal:
        return alt.X(axes.x.shorthand, title=axes.x_title, axis=alt.Axis(labelOverlap=True))
    span = span_seconds or 0.0
    if span <= _DAY_SPAN:
        # the time of day (with seconds over short spans), and the day under the first tick
        # and under each midnight
        clock = "%H:%M:%S" if span <= _SECONDS_SPAN else "%H:%M"
        label = (
            "hours(datum.value) === 0 && minutes(datum.value) === 0 || datum.index === 0 "
            f"? [timeFormat(datum.value, '{clock}'), timeFormat(datum.value, '%b %d')] "
            f": timeFormat(datum.value, '{clock}')"
        )
    elif span <= _MONTHS_SPAN:
        label = "timeFormat(datum.value, '%b %d')"
    else:
        label = "timeFormat(datum.value, '%Y-%m-%d')"
    axis = alt.Axis(labelExpr=label, labelOverlap=True, labelFlush=True)
    return alt.X(axes.x.shorthand, title=axes.x_title, axis=axis)


def has_thin(drawn: pl.DataFrame) -> bool:
    """Whether some series of `drawn` has a stretch with fewer runs than its most."""
    if PART_FIELD not in drawn.columns or drawn.height == 0:
        return False
    return bool(((drawn[PART_FIELD] & THIN_PART) > 0).any())


def time_span_class(drawn: pl.DataFrame) -> float | None:
    """A wall-time x axis's span, rounded to the class its labels depend on (so that the
    spec, which depends on it, is reused across views of similar spans)."""
    if drawn.height == 0 or not isinstance(drawn.schema["x"], pl.Datetime):
        return None
    micros = drawn["x"].dt.epoch("us")
    low, high = micros.min(), micros.max()
    if not isinstance(low, int) or not isinstance(high, int):
        return None
    span = (high - low) / 1e6
    limits = (_SECONDS_SPAN, _DAY_SPAN, _MONTHS_SPAN, float("inf"))
    return next(limit for limit in limits if span <= limit)


def _subtitle(view: View) -> str | alt.UndefinedType:
    text = smoothing_text(view)
    return text if text else alt.Undefined


def widget_spec(
    drawn: pl.DataFrame,
    view: View,
    *,
    group_page: bool = False,
    width: int = 300,
    height: int = 200,
    columns: int = 2,
) -> WidgetSpec:
    """The Explorer's spec for the chart rows `drawn` (no rows inside: they travel as Arrow).

    It depends on the metrics drawn, the x type (and a wall-time axis's span class), whether
    there is any row and the settings that titles and marks show; not on which runs form
    which series (their colours travel as data, the legend is the browser's), so the widget
    reuses it across groupings. `group_page`: `drawn` has a ``layer`` column (``"group"``
    rows: the group's line and band; ``"run"`` rows: its runs, labelled in ``run``).
    """
    _check_frame(drawn, "widget_spec")
    order = alt.EncodingSortField(field=ORDER_FIELD, op="min")
    axes = _axes(drawn, view, view.log_y, None, order, width, height, widget=True)
    axes = replace(axes, x=_x_axis(axes, time_span_class(drawn)))
    raw = RAW_FIELD in drawn.columns and not group_page
    thin = has_thin(drawn)
    datasets = _Datasets()
    panels: list[Any] = []
    frames: list[Any] = []
    for number, metric in enumerate(_metrics(drawn)):
        layers: list[alt.Chart] = []
        where = {"metric": metric}
        if group_page:
            _, runs_base = datasets.part({**where, "layer": "run"})
            layers.append(_runs_layer(axes, metric, runs_base, number))
            where = {**where, "layer": "group"}
        _, base = datasets.part(where)
        layers += _widget_panel(axes, metric, base, number, raw=raw, thin=thin)
        title = alt.TitleParams(text=metric, subtitle=_subtitle(view), anchor="start")
        panels.append(alt.layer(*layers).properties(title=title, width=width, height=height))
        frame_layer = _frame_panel(axes, metric, number)
        frames.append(alt.layer(frame_layer).properties(title=title, width=width, height=height))
    meta = {
        "datasets": datasets.listed,
        "log_y": bool(view.log_y),
        "grouped": axes.grouped,
        "raw": raw,
    }
    combined = alt.concat(
        *panels,
        columns=columns,
        params=[
            alt.VariableParameter(name=ISOLATED_PARAM, value=None),
            alt.VariableParameter(name=BAND_PARAM, value=BAND_OPACITY),
        ],
        usermeta={"rungroup": meta},
    ).resolve_scale(color="shared")
    spec: dict[str, Any] = combined.to_dict(validate=False)
    frame: dict[str, Any] = alt.concat(
        *frames, columns=columns, usermeta={"rungroup": meta}
    ).to_dict(validate=False)
    key = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    extra = (COLOUR_FIELD, *((PART_FIELD,) if thin else ()), *((RAW_FIELD,) if raw else ()))
    fields = (*CHART_COLUMNS, ORDER_FIELD, *extra, *(PAGE_COLUMNS if group_page else ()))
    return WidgetSpec(spec=spec, frame=frame, key=key, fields=fields)
