"""What the widget's controls offer, and the checks of a `View` against the runs.

`info` is the synced trait the browser builds its controls from: metrics, groupable columns
with their number of distinct values, the x axis choices and the choices of each setting.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from rungroup.runs import Runs
from rungroup.view import (
    ALIGNS,
    BANDS,
    CI_METHODS,
    LINES,
    SMOOTH_ORDERS,
    SMOOTHINGS,
    X_BUILTINS,
    View,
)


def info(runs: Runs) -> dict[str, Any]:
    frame = runs.runs
    names = [name for name in runs.columns if name in frame.columns]
    # one query for every column: a hundred small Series calls cost more than the counting
    distinct = (
        frame.select(
            (pl.col(n).explode() if isinstance(frame.schema[n], pl.List) else pl.col(n))
            .drop_nulls()
            .n_unique()
            .alias(n)
            for n in names
        ).row(0)
        if names
        else ()
    )
    columns = [
        {"name": n, "distinct": int(count)} for n, count in zip(names, distinct, strict=True)
    ]
    metrics = runs.metrics
    return {
        "n_runs": len(runs),
        "metrics": metrics,
        "columns": columns,
        "x_choices": [*X_BUILTINS, *metrics],
        "choices": {
            "line": list(LINES),
            "band": list(BANDS),
            "ci_method": list(CI_METHODS),
            "align": list(ALIGNS),
            "smoothing": list(SMOOTHINGS),
            "smooth_order": list(SMOOTH_ORDERS),
        },
    }


def check_against_runs(view: View, runs: Runs, only: str | None = None) -> None:
    """The choices that depend on the data: metric names, run columns, the x axis."""
    metrics = runs.metrics
    if only in (None, "metrics"):
        unknown = [m for m in view.metrics if m not in metrics]
        if unknown and metrics:
            raise ValueError(
                f"metrics: {', '.join(map(repr, unknown))} not logged; choose from: "
                f"{', '.join(metrics)}"
            )
    if only in (None, "group_by") and len(runs):  # no runs yet (a live store): any column
        columns = [c for c in runs.columns if c in runs.runs.columns]
        unknown = [c for c in view.group_by if c not in columns]
        if unknown:
            raise ValueError(
                f"group_by: {', '.join(map(repr, unknown))} is not a run column; choose from: "
                f"{', '.join(columns)}"
            )
    if only in (None, "x") and view.x not in X_BUILTINS and view.x not in metrics and metrics:
        raise ValueError(
            f"x={view.x!r} is not valid; choose one of: {', '.join((*X_BUILTINS, *metrics))}"
        )
