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
from typing import Any

LINES = ("mean", "median", "min", "max", "iqm")
BANDS = ("none", "minmax", "std", "stderr", "ci", "quantile")
CI_METHODS = ("t", "bootstrap")
ALIGNS = ("auto", "exact", "interpolate", "bucket")
SMOOTHINGS = ("none", "ema", "window", "gaussian")
SMOOTH_ORDERS = ("before", "after")
#: x-axis choices that are not metrics (any metric name is also accepted).
X_BUILTINS = ("step", "time", "timestamp")
#: The largest EMA weight (TensorBoard's slider stops at 0.999 too).
EMA_MAX = 0.999


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
    """What to aggregate and how to draw it (DESIGN.md, "The View").

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
