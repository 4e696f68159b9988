"""The Explorer's Compare view: `rungroup.compare` of the runs the widget shows.

Its settings are one synced trait, ``compare`` (a dict: metric, reduction and its parameters,
baseline group, direction, estimate, table sort), checked here; which view shows beside the
table is the ``panel`` trait. The comparison follows the widget's View (grouping, hidden runs,
x axis, interval level, bootstrap resamples, seed) and its filter box. A `compare` request is
answered with the table's rows as Arrow IPC, the columns' labels and the forest plot's spec
(`rungroup.compare_chart`); the session keeps the last comparisons (`CompareCache`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from rungroup.compare_chart import (
    BASELINE_MARK,
    ESTIMATE_TABLE,
    INTERVAL_MARK,
    POINT_MARK,
    ROW_FIELD,
    forest_chart,
    forest_rows,
    settings_of,
)
from rungroup.engine.compare import compare
from rungroup.engine.scores import REDUCTION_TABLE
from rungroup.runs import Runs
from rungroup.view import Choice, View
from rungroup.widget.payload import ipc

#: The widget's traits for the Compare view.
COMPARE_FIELDS: tuple[str, ...] = ("panel", "compare")
#: What shows beside the runs table.
PANEL_TABLE: dict[str, Choice] = {
    c.value: c
    for c in (
        Choice("charts", "Charts", "The grouped line charts"),
        Choice("compare", "Compare", "Compare groups' scores against a baseline group"),
    )
}
#: The ``compare`` trait's keys and defaults: "" for the metric is the first metric charted,
#: "" for the baseline the first group, None for the direction a guess from the metric name.
DEFAULTS: dict[str, Any] = {
    "metric": "",
    "reduce": "last",
    "k": 10,
    "at": None,
    "baseline": "",
    "higher_is_better": None,
    "estimate": "mean",
    "sort": [],
}
#: Comparisons kept per widget (a few, for going back and forth between settings).
COMPARE_CACHE = 4
#: The name of the forest plot's dataset (the browser feeds it the table's rows).
FOREST_DATA = "rg_compare"


@dataclass(frozen=True)
class Column:
    """One column of the Compare table: a value, and optionally the interval shown with it."""

    name: str
    label: str
    help: str
    low: str | None = None
    high: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def columns(estimate: str, ci_level: float) -> list[Column]:
    """The table's columns, labelled for the estimate and the interval level shown."""
    chosen = ESTIMATE_TABLE[estimate]
    level = f"{100 * ci_level:g} %"
    return [
        Column("series", "group", "The group (the runs' shared values)"),
        Column("n", "n", "Runs with a finite score (hidden runs left out)"),
        Column("estimate", chosen.label, f"{chosen.help}, {level}", "low", "high"),
        Column(
            "diff",
            "Δ mean vs baseline",
            f"Mean - baseline mean, Welch {level} interval",
            "diff_low",
            "diff_high",
        ),
        Column(
            "prob_improvement",
            "P(improvement)",
            f"P(a run scores better than a baseline run) + P(tie) / 2, bootstrap {level} interval",
            "prob_improvement_low",
            "prob_improvement_high",
        ),
        Column(
            "p_holm",
            "p (Holm)",
            "Welch's two-sided p-value, corrected across the groups by Holm's method",
        ),
    ]


def info() -> dict[str, Any]:
    """What the Compare view's controls offer (part of the widget's `info`)."""
    return {
        "fields": list(COMPARE_FIELDS),
        "panels": [c.as_dict() for c in PANEL_TABLE.values()],
        "reductions": [c.as_dict() for c in REDUCTION_TABLE.values()],
        "estimates": [c.as_dict() for c in ESTIMATE_TABLE.values()],
        "defaults": dict(DEFAULTS),
        "sortable": [c.name for c in columns("mean", 0.95)],
    }


def check_panel(value: Any) -> str:
    if value not in PANEL_TABLE:
        raise ValueError(f"panel={value!r} is not valid; choose one of: {', '.join(PANEL_TABLE)}")
    return str(value)


def check_settings(value: Any) -> dict[str, Any]:
    """The ``compare`` trait's value, completed with the defaults; a bad key or value raises
    ValueError naming it and the valid choices."""
    if not isinstance(value, Mapping):
        raise TypeError(f"compare must be a dict, got {value!r}")
    unknown = [k for k in value if k not in DEFAULTS]
    if unknown:
        raise ValueError(
            f"compare got unknown key(s) {', '.join(map(repr, unknown))}; "
            f"valid keys: {', '.join(DEFAULTS)}"
        )
    out = {**DEFAULTS, **value}
    for name in ("metric", "baseline"):
        if not isinstance(out[name], str):
            raise ValueError(f"compare {name} must be a name (str), got {out[name]!r}")
    if out["reduce"] not in REDUCTION_TABLE:
        raise ValueError(
            f"compare reduce={out['reduce']!r} is not valid; choose one of: "
            f"{', '.join(REDUCTION_TABLE)}"
        )
    if out["estimate"] not in ESTIMATE_TABLE:
        raise ValueError(
            f"compare estimate={out['estimate']!r} is not valid; choose one of: "
            f"{', '.join(ESTIMATE_TABLE)}"
        )
    k = out["k"]
    if isinstance(k, float) and k.is_integer():
        out["k"] = k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"compare k must be a positive integer, got {k!r}")
    at = out["at"]
    if at is not None and (
        isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at)
    ):
        raise ValueError(f"compare at must be a finite number (an x value) or None, got {at!r}")
    if out["higher_is_better"] not in (None, True, False):
        raise ValueError(
            f"compare higher_is_better must be true, false or null, got {out['higher_is_better']!r}"
        )
    sort = list(out["sort"] or [])
    names = [c.name for c in columns("mean", 0.95)]
    if sort and (len(sort) != 2 or sort[0] not in names or sort[1] not in ("asc", "desc")):
        raise ValueError(
            f"compare sort={sort!r} is not valid: [column, 'asc' | 'desc'] with a column of: "
            f"{', '.join(names)}"
        )
    out["sort"] = sort
    return out


@dataclass(frozen=True)
class Compared:
    """One comparison as the Compare view shows it."""

    #: `rungroup.compare`'s frame (with its recipe): what an export writes.
    frame: pl.DataFrame
    metric: str
    baseline: str
    higher_is_better: bool
    direction_guessed: bool
    #: The table's rows in the table's order (`Column` names and their intervals).
    rows: pl.DataFrame
    spec: dict[str, Any]
    columns: list[Column]


def metric_of(settings: Mapping[str, Any], view: View, runs: Runs) -> str:
    """The metric compared: the chosen one, else the first one charted."""
    if settings["metric"]:
        return str(settings["metric"])
    shown = view.metrics or tuple(runs.metrics)
    if not shown:
        raise ValueError("no metric to compare: the runs logged none")
    return shown[0]


def compute(
    runs: Runs,
    view: View,
    settings: Mapping[str, Any],
    groups: list[str],
    colours: Mapping[str, str],
) -> Compared:
    """The comparison of `runs` under `view` and the Compare view's `settings`. `groups`: the
    groups' labels in their order (the first is the default baseline); `colours`: each group's
    colour in the charts (`rungroup.palette.group_colours`)."""
    metric = metric_of(settings, view, runs)
    common = {
        "metric": metric,
        "reduce": settings["reduce"],
        "k": settings["k"],
        "at": settings["at"],
        "higher_is_better": settings["higher_is_better"],
    }
    if not groups:
        raise ValueError("no group to compare: every run is hidden or filtered out")
    # the default, or a group that another grouping or the filter left out: the first group
    baseline = settings["baseline"] if settings["baseline"] in groups else groups[0]
    frame = compare(runs, view, **common, baseline=baseline)
    about = settings_of(frame)
    cols = columns(settings["estimate"], view.ci_level)
    rows = forest_rows(frame, settings["estimate"]).with_columns(
        frame.select(
            "runs",
            "diff",
            "diff_low",
            "diff_high",
            "prob_improvement",
            "prob_improvement_low",
            "prob_improvement_high",
            "p_holm",
        )
    )
    if settings["sort"]:
        column, direction = settings["sort"]
        rows = rows.sort(column, descending=direction == "desc", nulls_last=True).with_columns(
            pl.int_range(pl.len(), dtype=pl.Int32).alias(ROW_FIELD)
        )
    # not validated against Vega-Lite's schema here (the tests validate the same chart): with
    # grouping off, its lists of groups made validation take seconds for 10,000 runs
    spec = forest_chart(
        frame, settings["estimate"], colours=colours, data_name=FOREST_DATA, width="container"
    ).to_dict(validate=False)
    return Compared(
        frame=frame,
        metric=metric,
        baseline=baseline,
        higher_is_better=bool(about["higher_is_better"]),
        direction_guessed=bool(about["direction_guessed"]),
        rows=rows,
        spec=spec,
        columns=cols,
    )


def reply(compared: Compared) -> tuple[dict[str, Any], list[bytes]]:
    """The `compare` request's answer: labels and spec as JSON, the rows as Arrow IPC."""
    body = {
        "metric": compared.metric,
        "baseline": compared.baseline,
        "higher_is_better": compared.higher_is_better,
        "direction_guessed": compared.direction_guessed,
        "columns": [c.as_dict() for c in compared.columns],
        "groups": compared.frame["series"].cast(pl.String).to_list(),
        "spec": compared.spec,
        "data_name": FOREST_DATA,
        "marks": {"interval": INTERVAL_MARK, "point": POINT_MARK, "baseline": BASELINE_MARK},
        "rows": compared.rows.height,
    }
    return body, [ipc(compared.rows)]


class CompareCache:
    """The last `COMPARE_CACHE` comparisons of one session, by everything that made them."""

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[Any, ...], Compared] = OrderedDict()

    def get(
        self,
        runs: Runs,
        view: View,
        search: str,
        settings: Mapping[str, Any],
        groups: list[str],
        colours: Mapping[str, str],
    ) -> Compared:
        """The comparison (computed, or kept from before: the cache is cleared when the
        session's runs change, and the runs of one filter text are one object)."""
        key = (
            view,
            search,
            tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in settings.items()),
            tuple(colours.items()),
        )
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
            return found
        made = compute(runs, view, settings, groups, colours)
        self._kept[key] = made
        while len(self._kept) > COMPARE_CACHE:
            self._kept.popitem(last=False)
        return made

    def clear(self) -> None:
        self._kept.clear()
