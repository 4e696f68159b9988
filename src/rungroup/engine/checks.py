"""The checks of a `View` against the runs it is applied to, each with one message.

The View checks what it can alone (choices, ranges); metric names, run columns and a metric
used as x depend on the data, so the engine and the widget check them here, the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from rungroup.runs import Runs
from rungroup.view import X_BUILTINS, View


def _listed(names: Iterable[str]) -> str:
    return ", ".join(names) or "(none)"


def check_group_by(runs: Runs, group_by: Iterable[str]) -> None:
    valid = set(runs.runs.columns)
    unknown = [c for c in group_by if c not in valid]
    if unknown:
        raise ValueError(
            f"unknown group_by column(s) {', '.join(map(repr, unknown))}; valid columns: "
            f"{_listed(runs.columns)}"
        )


def check_metrics(runs: Runs, metrics: Iterable[str]) -> None:
    available = runs.metrics
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise ValueError(
            f"unknown metric(s) {', '.join(map(repr, unknown))}; valid metrics: "
            f"{', '.join(available) or '(no metrics logged)'}"
        )


def check_x(runs: Runs, x: str) -> None:
    available = runs.metrics
    if x not in X_BUILTINS and x not in available:
        raise ValueError(
            f"x={x!r} is not valid; choose one of: {', '.join(X_BUILTINS)} or a metric: "
            f"{', '.join(available) or '(no metrics logged)'}"
        )


def check_view(view: View, runs: Runs, only: str | None = None) -> None:
    """Check `view` (or only its field `only`) against `runs`.

    Runs still being created (a live store with no runs or no metrics yet) accept any name:
    the column or metric may appear with the next poll.
    """
    if only in (None, "metrics") and runs.metrics:
        check_metrics(runs, view.metrics)
    if only in (None, "group_by") and len(runs):
        check_group_by(runs, view.group_by)
    if only in (None, "x") and runs.metrics:
        check_x(runs, view.x)
