"""File names of the widget's downloads: what they hold, read from the name.

``<project>_<metrics>_<grouping>_<what>.<suffix>``, for example
``demo_val_acc-val_loss_by-lr_aggregated.csv``: the project (the runs' most common
``project``, else their source folder's name), the metrics shown (or how many), the grouping
(``by-lr-seed``, ``all-config-except-seed``, ``per-run``), the group page if one is open,
and what the file is. Only letters, digits, ``.``, ``_`` and ``-`` are kept.
"""

from __future__ import annotations

import re
from pathlib import PurePath

import polars as pl

from rungroup.runs import CONFIG_PREFIX, Runs
from rungroup.view import View

#: Longest name part (characters) before the suffix: file systems allow 255 bytes.
MAX_LENGTH = 150
#: More metrics than this are named by their count.
NAMED_METRICS = 3


def _clean(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "runs"


def _key(name: str) -> str:
    return name[len(CONFIG_PREFIX) :] if name.startswith(CONFIG_PREFIX) else name


def project_name(runs: Runs) -> str:
    """The runs' most common project, else the name of the folder they were read from."""
    frame = runs.runs
    for column in ("project", "source"):
        if column not in frame.columns:
            continue
        values = frame[column].drop_nulls()
        if values.len() == 0:
            continue
        common = str(values.cast(pl.String).mode().sort()[0])
        return common if column == "project" else PurePath(common).name or common
    return "runs"


def _grouping(view: View) -> str:
    if not view.grouping:
        return "per-run"
    keys = "-".join(_key(k) for k in view.group_by)
    if view.reverse:
        return f"all-config-except-{keys}" if keys else "all-config"
    return f"by-{keys}" if keys else "all-runs"


def export_name(
    runs: Runs, view: View, metrics: list[str], what: str, suffix: str, focus: str = ""
) -> str:
    """The download's file name (see the module docs)."""
    shown = "-".join(metrics) if len(metrics) <= NAMED_METRICS else f"{len(metrics)}-metrics"
    parts = [project_name(runs), shown or "no-metrics", _grouping(view)]
    if focus:
        parts.append(f"group-{focus}")
    parts.append(what)
    stem = "_".join(_clean(p) for p in parts)
    return stem[:MAX_LENGTH] + suffix
