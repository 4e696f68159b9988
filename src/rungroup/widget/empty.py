"""What the chart area says when there is nothing (or not everything) to draw.

Instead of an empty "(no data)" panel with an empty legend: *No runs match 'xyz'* when the
filter box leaves no run, *Every run is hidden* when the eye has hidden them all, and for a
metric asked for that has no finite value among the runs shown, a note naming it.
"""

from __future__ import annotations

import polars as pl

from rungroup.engine.xaxis import select_metrics
from rungroup.runs import Runs
from rungroup.view import View


def empty_message(shown: Runs, view: View, search: str, drawn: pl.DataFrame) -> str | None:
    """Why nothing is drawn (None when something is)."""
    if drawn.height > 0:
        return None
    if len(shown) == 0:
        return f"No runs match {search!r}" if search else "There are no runs to show"
    if all(run_id in view.hidden for run_id in shown.ids):
        return "Every run is hidden: show one with its eye in the table"
    wanted = select_metrics(shown, view)
    if not wanted:
        return "These runs logged no metrics"
    if view.min_runs > 1:
        return f"No point has {view.min_runs} runs or more (min runs per point)"
    names = ", ".join(wanted)
    return f"No finite values of {names} in the runs shown"


def metrics_without_values(shown: Runs, view: View, drawn: pl.DataFrame) -> list[str]:
    """The metrics asked for that got no panel: no finite value among the runs shown."""
    if drawn.height == 0 or len(shown) == 0:
        return []
    drawn_metrics = set(drawn["metric"].cast(pl.String).unique().to_list())
    return [m for m in select_metrics(shown, view) if m not in drawn_metrics]
