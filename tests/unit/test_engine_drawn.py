"""`aggregate_drawn`: a chart's rows of the Aggregate, with only the statistics its line and
band are made of computed; the same rows and numbers as `aggregate()`, bit for bit."""

from __future__ import annotations

from typing import Any

from engine_helpers import make_runs, run_sets
from hypothesis import given, settings
from hypothesis import strategies as st

import rungroup as rg
from rungroup.engine import dense_stats
from rungroup.engine.aggregate import aggregate_drawn
from rungroup.engine.stats import STAT_COLUMNS
from rungroup.view import BANDS

SMOOTHINGS = [
    {},
    {"smoothing": "ema", "smoothing_param": 0.6},
    {"smoothing": "window", "smoothing_param": 3},
    {"smoothing": "gaussian", "smoothing_param": 1.5},
]

views = st.fixed_dictionaries(
    {
        "line": st.sampled_from(["mean", "median", "min", "max", "iqm"]),
        "band": st.sampled_from(BANDS),
        "align": st.sampled_from(["auto", "exact", "interpolate", "bucket"]),
        "grouping": st.booleans(),
        "min_runs": st.integers(1, 3),
        "points": st.integers(2, 40),
        "smooth_order": st.sampled_from(["before", "after"]),
    }
).flatmap(lambda fields: st.sampled_from(SMOOTHINGS).map(lambda smoothing: {**fields, **smoothing}))


@settings(max_examples=300, deadline=None)
@given(st.one_of(run_sets(), run_sets(shared_steps=True)), views)
def test_drawn_rows_are_the_aggregates_own(data: Any, view: dict[str, Any]) -> None:
    runs = make_runs(*data)
    full = rg.aggregate(runs, **view)
    drawn = aggregate_drawn(runs, rg.View(**view))
    assert not set(drawn.columns) & set(STAT_COLUMNS)
    assert drawn.columns == [c for c in full.columns if c not in STAT_COLUMNS]
    assert drawn.equals(full.select(drawn.columns))


def test_a_mean_and_std_chart_needs_no_order_statistics(monkeypatch: Any) -> None:
    runs = make_runs(
        [{"id": f"r{i}", "name": f"r{i}", "group": "g"} for i in range(3)],
        [(f"r{i}", "loss", step, float(i + step)) for i in range(3) for step in range(5)],
    )
    full = rg.aggregate(runs, line="mean", band="std")

    def unwanted(*args: Any) -> Any:
        raise AssertionError("the runs were sorted at each point")

    monkeypatch.setattr(dense_stats, "_order_statistics", unwanted)
    drawn = aggregate_drawn(runs, rg.View(line="mean", band="std"))
    assert drawn["line"].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert drawn["upper"].to_list() == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert drawn.equals(full.select(drawn.columns))
