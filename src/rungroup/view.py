"""The `View`: every setting a user can change, in one immutable value.

The widget edits it (one trait per field, same names), `aggregate()` consumes it, `chart()`
reads it and an export writes it out as its recipe. There is no second copy of a setting.

Every engine function takes ``view=None, **fields``; `resolve_view` turns that pair into one
`View`, the keywords overriding the view's fields.

Choices that depend on the data (metric names, run columns) are checked by the engine, which
knows the runs; everything else is checked here, when the value is built.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rungroup.runs import Runs


@dataclass(frozen=True)
class Choice:
    """One value a choice field takes, as the user sees it."""

    value: str
    #: Shown in the widget's menus.
    label: str
    #: What it means (a tooltip).
    help: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "label": self.label, "help": self.help}


@dataclass(frozen=True)
class Line(Choice):
    """A line: the statistic column of the same name, read at each point."""

    #: How the statistic is computed from the runs' values v_1 .. v_n at one point.
    formula: str


@dataclass(frozen=True)
class Bound:
    """One edge of a band: ``base`` (a statistic, or ``"line"``), plus or minus ``offset``."""

    base: str
    offset: str | None = None
    #: +1 or -1: the sign of ``offset``.
    sign: int = 1

    @property
    def formula(self) -> str:
        if self.offset is None:
            return self.base
        return f"{self.base} {'+' if self.sign > 0 else '-'} {self.offset}"

    @property
    def statistics(self) -> tuple[str, ...]:
        """The statistic columns this edge is made of (the line itself is not counted)."""
        names = (self.base, self.offset) if self.offset else (self.base,)
        return tuple(name for name in names if name != "line")


@dataclass(frozen=True)
class Band(Choice):
    """A band: `lower` and `upper` from the statistics, and how the chart's axis names it."""

    lower: Bound
    upper: Bound
    #: The band in the y axis title: `str.format` fields ``ci_level``, ``ci_method``,
    #: ``q_low``, ``q_high``; None: no band to name (the title names the line alone).
    title: str | None
    #: The View's other fields this band reads (the widget shows their inputs with it).
    uses: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "uses": list(self.uses)}

    @property
    def statistics(self) -> tuple[str, ...]:
        """The statistic columns `lower` and `upper` are made of, in order, without repeats."""
        return tuple(dict.fromkeys((*self.lower.statistics, *self.upper.statistics)))

    def title_of(self, view: View) -> str | None:
        if self.title is None:
            return None
        low, high = view.quantiles
        return self.title.format(
            ci_level=view.ci_level, ci_method=view.ci_method, q_low=low, q_high=high
        )


@dataclass(frozen=True)
class Smoothing(Choice):
    """A smoothing method, with the strength it starts at and what the strength means."""

    param: float
    #: The strength's meaning per x axis; ``*`` for any other (``{x}``: the axis' name).
    param_help: Mapping[str, str]
    #: The strength field's step (an HTML number input's ``step``) and largest value.
    param_step: str = "any"
    param_max: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "param": self.param,
            "param_help": dict(self.param_help),
            "param_step": self.param_step,
            "param_max": self.param_max,
        }


#: The largest EMA weight (TensorBoard's slider stops at 0.999 too).
EMA_MAX = 0.999
_SIGMA = "gaussian sigma in "

#: Every line, in display order (docs/statistics.md, "Line and band").
LINE_TABLE: dict[str, Line] = {
    line.value: line
    for line in (
        Line("mean", "mean", "The mean of the runs' values", "mean(v)"),
        Line(
            "median",
            "median",
            "The middle value (the mean of the two middle values for an even count)",
            "median(v)",
        ),
        Line("min", "min", "The lowest value", "min(v)"),
        Line("max", "max", "The highest value", "max(v)"),
        Line(
            "iqm",
            "IQM",
            "Interquartile mean: the mean of the middle half of the runs (as rliable reports)",
            "mean of sorted v without floor(n/4) values at each end",
        ),
    )
}

#: Every band, in display order: what `lower` and `upper` are (docs/statistics.md).
BAND_TABLE: dict[str, Band] = {
    band.value: band
    for band in (
        Band("none", "off", "No band", Bound("line"), Bound("line"), None),
        Band(
            "minmax",
            "min–max",
            "From the lowest to the highest value",
            Bound("min"),
            Bound("max"),
            "min–max",
        ),
        Band(
            "std",
            "std dev",
            "The mean plus and minus the sample standard deviation (ddof = 1)",
            Bound("mean", "std", -1),
            Bound("mean", "std", +1),
            "mean ± std",
        ),
        Band(
            "stderr",
            "std err",
            "The mean plus and minus the standard error of the mean (std / sqrt(n))",
            Bound("mean", "stderr", -1),
            Bound("mean", "stderr", +1),
            "mean ± stderr",
        ),
        Band(
            "ci",
            "confidence interval",
            "A confidence interval of the mean, at the chosen level and method",
            Bound("ci_low"),
            Bound("ci_high"),
            "{ci_level:.0%} CI ({ci_method})",
            uses=("ci_level", "ci_method"),
        ),
        Band(
            "quantile",
            "quantiles",
            "Between the chosen lower and upper quantiles of the values",
            Bound("q_low"),
            Bound("q_high"),
            "q{q_low:g}–q{q_high:g}",
            uses=("quantiles",),
        ),
    )
}

#: The other choice fields, their values in display order.
CHOICE_TABLES: dict[str, dict[str, Choice]] = {
    "ci_method": {
        choice.value: choice
        for choice in (
            Choice("t", "Student t", "mean ± t quantile × std err"),
            Choice("bootstrap", "bootstrap", "Seeded percentile bootstrap of the mean"),
        )
    },
    "align": {
        choice.value: choice
        for choice in (
            Choice(
                "auto",
                "auto",
                "Per series: exact when its runs logged the same x values, else interpolate",
            ),
            Choice("exact", "exact", "Only x values a run logged; no value is made up"),
            Choice(
                "interpolate",
                "interpolate",
                "Each run linearly interpolated at its series' x values, within its own x span",
            ),
            Choice("bucket", "bucket", "Each run's mean in equal-width bins of x"),
        )
    },
    "smoothing": {
        choice.value: choice
        for choice in (
            Smoothing("none", "off", "No smoothing", 0.6, {}),
            Smoothing(
                "ema",
                "EMA",
                "Exponential moving average, debiased as TensorBoard's",
                0.6,
                {"*": f"EMA weight, 0 to {EMA_MAX} (TensorBoard's smoothing)"},
                param_step="0.05",
                param_max=EMA_MAX,
            ),
            Smoothing(
                "window",
                "window",
                "Moving average; strength: window length in points",
                5.0,
                {"*": "window length in points"},
                param_step="1",
            ),
            Smoothing(
                "gaussian",
                "gaussian",
                "Gaussian kernel; strength: sigma in x units (seconds for time axes)",
                2.0,
                {
                    "step": _SIGMA + "steps",
                    "time": _SIGMA + "seconds",
                    "timestamp": _SIGMA + "seconds",
                    "*": _SIGMA + "units of {x}",
                },
            ),
        )
    },
    "smooth_order": {
        choice.value: choice
        for choice in (
            Choice("before", "each run, then aggregate", "Smooth each run, then aggregate"),
            Choice("after", "the aggregate", "Aggregate, then smooth the line and the band"),
        )
    },
    #: x axes that are not metrics (any metric name is also accepted).
    "x": {
        choice.value: choice
        for choice in (
            Choice("step", "step", "The step each value was logged at"),
            Choice("time", "relative time (s)", "Seconds since the run started"),
            Choice("timestamp", "wall time", "The wall-clock time of each value"),
        )
    },
}

LINES = tuple(LINE_TABLE)
BANDS = tuple(BAND_TABLE)
CI_METHODS = tuple(CHOICE_TABLES["ci_method"])
ALIGNS = tuple(CHOICE_TABLES["align"])
SMOOTHINGS = tuple(CHOICE_TABLES["smoothing"])
SMOOTH_ORDERS = tuple(CHOICE_TABLES["smooth_order"])
X_BUILTINS = tuple(CHOICE_TABLES["x"])


def setting_choices() -> dict[str, list[dict[str, Any]]]:
    """Every choice field's values with label and help, in display order (the widget's
    `info["choices"]`: the front end keeps no copy)."""
    tables: dict[str, Mapping[str, Choice]] = {
        "line": LINE_TABLE,
        "band": BAND_TABLE,
        **CHOICE_TABLES,
    }
    return {name: [c.as_dict() for c in table.values()] for name, table in tables.items()}


def band_columns(view: View) -> dict[str, str]:
    """What the drawn columns are: ``{"line": ..., "lower": ..., "upper": ...}`` as formulas
    over the statistic columns (an export's recipe)."""
    band = BAND_TABLE[view.band]

    def text(bound: Bound) -> str:
        return view.line if bound.base == "line" and bound.offset is None else bound.formula

    return {"line": view.line, "lower": text(band.lower), "upper": text(band.upper)}


def drawn_statistics(view: View) -> frozenset[str]:
    """The statistic columns the view's line and band are made of."""
    return frozenset((view.line, *BAND_TABLE[view.band].statistics))


def y_title(metric: str, view: View | None) -> str:
    """A chart panel's y axis title: the metric, and with grouping on its line and band."""
    if view is None or not view.grouping:
        return metric
    band = BAND_TABLE[view.band].title_of(view)
    if band is None:
        return f"{metric} ({view.line})"
    return f"{metric} ({view.line}, band: {band})"


def smoothing_text(view: View) -> str:
    """What a smoothed chart says of its smoothing ("" when there is none)."""
    if view.smoothing == "none":
        return ""
    choice = CHOICE_TABLES["smoothing"][view.smoothing]
    order = "each run, then aggregated" if view.smooth_order == "before" else "after aggregating"
    return f"smoothed: {choice.label} {view.smoothing_param:g} ({order}); faint: unsmoothed"


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of: {', '.join(choices)}")
    return value


def _names(name: str, value: Any) -> tuple[str, ...]:
    """A str or an iterable of str, as a tuple (order kept, duplicates removed)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a name or a sequence of names, got {value!r}")
    names = tuple(value)
    for item in names:
        if not isinstance(item, str):
            raise TypeError(f"{name} must contain names (str), got {item!r}")
    return tuple(dict.fromkeys(names))


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    # numpy.bool_ and friends, but not ints such as 2 or strings such as "false"
    if type(value).__name__ in ("bool_", "bool") and hasattr(value, "item"):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return int(value)


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


@dataclass(frozen=True)
class View:
    """What to aggregate and how to draw it (docs/architecture.md).

    Build one with keywords (``View(group_by="config.lr", band="ci")``), change it with
    `View.replace`, store it with `View.to_dict` / `View.from_dict`.
    """

    #: Metric names; ``()`` means every metric of the runs.
    metrics: tuple[str, ...] = ()
    #: Run columns to group by; several = nested groups. ``tags`` puts a run in each tag group.
    group_by: tuple[str, ...] = ("group",)
    #: ``False``: one series per run (labelled with the run name).
    grouping: bool = True
    #: ``True``: group by every config column except those named in `group_by`.
    reverse: bool = False
    #: ``step``, ``time`` (seconds since the run started), ``timestamp`` or a metric name.
    x: str = "step"
    line: str = "mean"
    band: str = "std"
    #: Lower and upper fraction of the quantile band.
    quantiles: tuple[float, float] = (0.25, 0.75)
    ci_level: float = 0.95
    ci_method: str = "t"
    bootstrap_samples: int = 2000
    seed: int = 0
    align: str = "auto"
    #: Most x values per series.
    points: int = 1500
    #: Points with fewer contributing runs are dropped.
    min_runs: int = 1
    smoothing: str = "none"
    #: ``ema``: weight in [0, 0.999]; ``window``: points (>= 1); ``gaussian``: sigma in x units
    #: (seconds for ``time`` and ``timestamp``).
    smoothing_param: float = 0.6
    smooth_order: str = "before"
    log_y: bool = False
    #: Run ids left out of everything.
    hidden: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("metrics", _names("metrics", self.metrics))
        put("group_by", _names("group_by", self.group_by))
        put("grouping", _bool("grouping", self.grouping))
        put("reverse", _bool("reverse", self.reverse))
        if not isinstance(self.x, str) or not self.x:
            raise ValueError(
                f"x={self.x!r} is not valid; choose one of: {', '.join(X_BUILTINS)} "
                "or a metric name"
            )
        put("line", _choice("line", self.line, LINES))
        put("band", _choice("band", self.band, BANDS))
        quantiles = self.quantiles
        if isinstance(quantiles, str | bytes) or not isinstance(quantiles, Iterable):
            raise TypeError(f"quantiles must be a pair (lower, upper), got {quantiles!r}")
        pair = tuple(_float("quantiles", q) for q in quantiles)
        if len(pair) != 2 or not 0.0 <= pair[0] <= pair[1] <= 1.0:
            raise ValueError(
                f"quantiles must be (lower, upper) with 0 <= lower <= upper <= 1, got {quantiles!r}"
            )
        put("quantiles", pair)
        level = _float("ci_level", self.ci_level)
        if not 0.0 < level < 1.0:
            raise ValueError(f"ci_level must be strictly between 0 and 1, got {self.ci_level!r}")
        put("ci_level", level)
        put("ci_method", _choice("ci_method", self.ci_method, CI_METHODS))
        put("bootstrap_samples", _int("bootstrap_samples", self.bootstrap_samples, 1))
        put("seed", _int("seed", self.seed, 0))
        put("align", _choice("align", self.align, ALIGNS))
        put("points", _int("points", self.points, 2))
        put("min_runs", _int("min_runs", self.min_runs, 1))
        put("smoothing", _choice("smoothing", self.smoothing, SMOOTHINGS))
        param = _float("smoothing_param", self.smoothing_param)
        if param < 0:
            raise ValueError(f"smoothing_param must be >= 0, got {self.smoothing_param!r}")
        if self.smoothing == "ema" and param > EMA_MAX:
            raise ValueError(
                f"smoothing='ema' takes a weight in [0, {EMA_MAX}] as smoothing_param, "
                f"got {self.smoothing_param!r}"
            )
        if self.smoothing == "window" and param < 1:
            raise ValueError(
                "smoothing='window' takes the window length in points (>= 1) as "
                f"smoothing_param, got {self.smoothing_param!r}"
            )
        if self.smoothing == "gaussian" and param <= 0:
            raise ValueError(
                "smoothing='gaussian' takes sigma in x units (> 0) as smoothing_param, "
                f"got {self.smoothing_param!r}"
            )
        put("smoothing_param", param)
        put("smooth_order", _choice("smooth_order", self.smooth_order, SMOOTH_ORDERS))
        put("log_y", _bool("log_y", self.log_y))
        hidden = self.hidden
        if isinstance(hidden, str) or not isinstance(hidden, Iterable):
            raise TypeError(f"hidden must be a set of run ids, got {hidden!r}")
        ids = frozenset(hidden)
        for run_id in ids:
            if not isinstance(run_id, str):
                raise TypeError(f"hidden must contain run ids (str), got {run_id!r}")
        put("hidden", ids)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **fields: Any) -> View:
        """A copy with `fields` changed (validated like the constructor)."""
        _check_names(fields)
        return dataclasses.replace(self, **fields)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: tuples become lists, `hidden` a sorted list."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            value = getattr(self, name)
            if isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> View:
        """The inverse of `to_dict`; unknown keys raise `TypeError` naming the valid ones."""
        _check_names(data)
        return cls(**dict(data))


def _check_names(fields: Mapping[str, Any]) -> None:
    valid = View.field_names()
    unknown = [name for name in fields if name not in valid]
    if unknown:
        raise TypeError(
            f"unknown View field(s) {', '.join(map(repr, unknown))}; valid fields: "
            f"{', '.join(valid)}"
        )


def resolve_view(view: View | Mapping[str, Any] | None = None, **fields: Any) -> View:
    """One `View` from an optional base view (or its dict) and keyword overrides."""
    if view is None:
        _check_names(fields)
        return View(**fields)
    if isinstance(view, Mapping):
        view = View.from_dict(view)
    if not isinstance(view, View):
        raise TypeError(f"view must be a rungroup.View, a dict or None, got {type(view).__name__}")
    return view.replace(**fields) if fields else view


#: The fields whose valid values depend on the runs.
RUN_FIELDS = ("metrics", "group_by", "x")


def check_against_runs(
    view: View, runs: Runs, only: str | None = None, *, pending_ok: bool = False
) -> None:
    """Check the fields whose choices come from the runs (metric names, run columns, x);
    `ValueError` names the valid choices. `only` checks one of `RUN_FIELDS`.

    `pending_ok`: names the runs may still log are accepted while they have none (a live
    store that has not written yet): metrics and x while no metric is logged, group_by while
    there is no run.
    """
    metrics = runs.metrics
    named = ", ".join(metrics) or "(no metrics logged)"
    lenient_metrics = pending_ok and not metrics
    known_x = view.x in X_BUILTINS or view.x in metrics
    if only in (None, "x") and not known_x and not lenient_metrics:
        raise ValueError(
            f"x={view.x!r} is not valid; choose one of: {', '.join(X_BUILTINS)} "
            f"or a metric: {named}"
        )
    if only in (None, "metrics") and not lenient_metrics:
        unknown = [m for m in view.metrics if m not in metrics]
        if unknown:
            raise ValueError(
                f"unknown metric(s) {', '.join(map(repr, unknown))}; valid metrics: {named}"
            )
    if only in (None, "group_by") and not (pending_ok and len(runs) == 0):
        present = set(runs.runs.columns)
        unknown = [c for c in view.group_by if c not in present]
        if unknown:
            valid = [c for c in runs.columns if c in present]
            raise ValueError(
                f"unknown group_by column(s) {', '.join(map(repr, unknown))}; valid columns: "
                f"{', '.join(valid)}"
            )
