"""`forest_chart(compared)`: a forest plot of a `rungroup.compare` frame.

One row per group: its estimate (mean, median or IQM of its runs' scores) as a point and the
estimate's interval as a rule, in the group's colour; the baseline group is drawn as a
diamond, with a dashed vertical rule at its estimate and the word "baseline" beside it, so
that every other interval reads against it. The Explorer's Compare view draws the same chart
(`data_name`: the rows arrive from the browser as Arrow, not inside the spec).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import polars as pl

from rungroup.engine.recipe import recipe_extra
from rungroup.engine.scores import REDUCTION_TABLE
from rungroup.palette import colour_at
from rungroup.view import Choice


@dataclass(frozen=True)
class Estimate(Choice):
    """An estimate of a group's score and the `compare()` columns it is read from."""

    column: str
    low: str
    high: str


#: The estimates a forest plot (and the Compare view's table) can show, in display order.
ESTIMATE_TABLE: dict[str, Estimate] = {
    e.value: e
    for e in (
        Estimate("mean", "mean", "Mean score, Student t interval", "mean", "mean_low", "mean_high"),
        Estimate(
            "mean_boot",
            "mean (bootstrap)",
            "Mean score, percentile bootstrap interval",
            "mean",
            "mean_boot_low",
            "mean_boot_high",
        ),
        Estimate(
            "median",
            "median",
            "Median score, percentile bootstrap interval",
            "median",
            "median_low",
            "median_high",
        ),
        Estimate(
            "iqm",
            "IQM",
            "Interquartile mean (25 % trimmed mean), percentile bootstrap interval",
            "iqm",
            "iqm_low",
            "iqm_high",
        ),
    )
}
#: Each row's place from the top (`forest_rows` numbers the frame's rows).
ROW_FIELD = "rg_row"
#: The columns the forest plot reads (`forest_rows`).
FOREST_FIELDS = ("series", "estimate", "low", "high", "n", "is_baseline", ROW_FIELD)
#: Names of the forest plot's marks (the widget's tests find them by name).
INTERVAL_MARK, POINT_MARK, BASELINE_MARK = "rg_interval", "rg_point", "rg_baseline"
LABEL_MARK = "rg_baseline_label"
_ROW_HEIGHT = 26
#: Past this many groups the plot keeps its height (and labels that would overlap are left
#: out): with grouping off, a thousand runs would make it 26,000 pixels tall.
MAX_ROWS = 40


def settings_of(compared: pl.DataFrame) -> dict[str, Any]:
    """The comparison's settings from the frame's recipe (`rungroup.compare` wrote them)."""
    about = (recipe_extra(compared) or {}).get("rungroup_compare")
    if not isinstance(about, dict):
        raise ValueError("forest_chart() takes the frame rungroup.compare returned")
    return about


def estimate_of(name: str) -> Estimate:
    if name not in ESTIMATE_TABLE:
        raise ValueError(
            f"estimate={name!r} is not valid; choose one of: {', '.join(ESTIMATE_TABLE)}"
        )
    return ESTIMATE_TABLE[name]


def forest_rows(compared: pl.DataFrame, estimate: str = "mean") -> pl.DataFrame:
    """One row per group: `FOREST_FIELDS`, the estimate and its interval renamed."""
    chosen = estimate_of(estimate)
    return compared.select(
        pl.col("series").cast(pl.String),
        pl.col(chosen.column).alias("estimate"),
        pl.col(chosen.low).alias("low"),
        pl.col(chosen.high).alias("high"),
        "n",
        "is_baseline",
        pl.int_range(pl.len(), dtype=pl.Int32).alias(ROW_FIELD),
    )


def axis_title(compared: pl.DataFrame, estimate: str = "mean") -> list[str]:
    """What the x axis shows, in two lines (a narrow plot cuts one long line): metric and
    reduction; estimate, interval level and direction."""
    about = settings_of(compared)
    reduce = REDUCTION_TABLE[about["reduce"]].label.replace(" k", f" {about['k']}")
    better = "higher" if about["higher_is_better"] else "lower"
    level = f"{100 * about['ci_level']:g} %"
    return [
        f"{about['metric']} ({reduce})",
        f"{estimate_of(estimate).label}, {level} interval; {better} is better",
    ]


def forest_chart(
    compared: pl.DataFrame,
    estimate: str = "mean",
    *,
    order: Sequence[str] | None = None,
    colours: Mapping[str, str] | None = None,
    data_name: str | None = None,
    width: int | str = 480,
) -> alt.LayerChart:
    """The forest plot of `compared` (a `rungroup.compare` frame).

    The groups are listed in the frame's order. `order`: the series in the colour order of
    the charts they appear in (default: the frame's), so a group has the same colour here as
    there; `colours`: each group's colour in those charts (`rungroup.palette.group_colours`),
    which then decides. `data_name`: leave the rows out
    of the spec and read them from the named dataset (`FOREST_FIELDS`) instead.
    """
    title = axis_title(compared, estimate)  # checks that `compared` is a comparison first
    rows = forest_rows(compared, estimate)
    groups = rows["series"].to_list()
    domain = list(order) if order is not None else groups
    known = set(domain)
    domain += [g for g in groups if g not in known]
    data: alt.NamedData | alt.InlineData = (
        alt.NamedData(name=data_name, format={"parse": None})
        if data_name
        else alt.InlineData(values=rows.to_dicts())
    )
    base = alt.Chart(data)
    # the rows' order (the Compare table's sort in the widget): a field, since a layer leaves
    # out the rows it cannot draw (no interval) and the layers' domains are joined
    y = alt.Y(
        "series:N",
        sort=alt.EncodingSortField(field=ROW_FIELD, op="min"),
        title=None,
        axis=alt.Axis(labelLimit=220, labelOverlap=True),
    )
    if colours is not None:
        known_colours = dict(colours)
        for group in groups:
            known_colours.setdefault(group, colour_at(len(known_colours)))
        domain = list(known_colours)
        scale = alt.Scale(domain=domain, range=list(known_colours.values()))
    else:
        scale = alt.Scale(domain=domain)
    colour = alt.Color("series:N", scale=scale, legend=None)
    tooltip = [
        alt.Tooltip("series:N", title="group"),
        alt.Tooltip("n:Q", title="runs scored"),
        alt.Tooltip("estimate:Q", title=estimate_of(estimate).label, format=".4g"),
        alt.Tooltip("low:Q", title="interval low", format=".4g"),
        alt.Tooltip("high:Q", title="interval high", format=".4g"),
    ]
    interval = (
        base.mark_rule(strokeWidth=2.5)
        .encode(
            x=alt.X(
                "low:Q",
                title=title,
                scale=alt.Scale(zero=False),
                axis=alt.Axis(tickCount=8, labelOverlap=True),
            ),
            x2="high:Q",
        )
        .encode(y=y, color=colour, tooltip=tooltip)
        .properties(name=INTERVAL_MARK)
    )
    point = (
        base.mark_point(filled=True, size=90, opacity=1)
        .encode(
            x="estimate:Q",
            y=y,
            color=colour,
            shape=alt.condition("datum.is_baseline", alt.value("diamond"), alt.value("circle")),
            tooltip=tooltip,
        )
        .properties(name=POINT_MARK)
    )
    on_baseline = base.transform_filter("datum.is_baseline && isValid(datum.estimate)")
    baseline = (
        on_baseline.mark_rule(strokeDash=[5, 4], opacity=0.8)
        .encode(x="estimate:Q", color=colour)
        .properties(name=BASELINE_MARK)
    )
    label = (
        on_baseline.mark_text(align="left", dx=8, dy=-9, fontSize=11)
        .encode(x="estimate:Q", y=y, color=colour, text=alt.value("baseline"))
        .properties(name=LABEL_MARK)
    )
    height = alt.Step(_ROW_HEIGHT) if len(groups) <= MAX_ROWS else MAX_ROWS * _ROW_HEIGHT
    chart: alt.LayerChart = alt.layer(interval, baseline, point, label).properties(
        width=width, height=height
    )
    return chart
