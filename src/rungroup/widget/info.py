"""What the widget's controls offer.

`info` is the synced trait the browser builds its controls from: metrics, groupable columns
with their number of distinct values, the x axis choices, the View's fields and defaults, the
choices of each setting with label and help (`rungroup.view.setting_choices`) and the number
of table rows per page. The front end keeps no copy of any of them.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from rungroup.runs import Runs
from rungroup.view import X_BUILTINS, View, setting_choices
from rungroup.widget import compare
from rungroup.widget.keys import column_kind
from rungroup.widget.table import PAGE_SIZE
from rungroup.widget.traits import UI_FIELDS


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
    schema = frame.schema
    columns = [
        {
            "name": n,
            "distinct": int(count),
            "kind": column_kind(n, schema[n], int(count), frame.height),
        }
        for n, count in zip(names, distinct, strict=True)
    ]
    metrics = runs.metrics
    return {
        "n_runs": len(runs),
        "metrics": metrics,
        "columns": columns,
        "x_choices": [*X_BUILTINS, *metrics],
        "fields": list(View.field_names()),
        "defaults": View().to_dict(),
        "choices": setting_choices(),
        "page_size": PAGE_SIZE,
        "ui_fields": list(UI_FIELDS),
        "compare": compare.info(),
    }
