"""`profile_chart(profile)`: a performance profile drawn by `rungroup.chart`.

A profile frame (`rungroup.performance_profile`) has the columns the chart reads: per group a
line (the fraction of runs better than the threshold x) and its bootstrap band.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl

from rungroup.chart import chart
from rungroup.engine.recipe import recipe_extra, recipe_of
from rungroup.view import View


def profile_chart(profile: pl.DataFrame, **options: Any) -> alt.ConcatChart:
    """The chart of a frame from `rungroup.performance_profile` (options go to `chart`)."""
    settings = recipe_extra(profile) or {}
    about = settings.get("rungroup_profile")
    view = recipe_of(profile)
    if not isinstance(about, dict) or view is None:
        raise ValueError("profile_chart() takes the frame rungroup.performance_profile returned")
    metric, reduce = about["metric"], about["reduce"]
    sign = ">" if about["higher_is_better"] else "<"
    label = f"fraction of runs with {reduce} {metric} {sign} τ"
    band = View(band="ci", ci_method="bootstrap", ci_level=view.ci_level, line="mean")
    options.setdefault("x_title", f"τ ({reduce} {metric})")
    return chart(profile.with_columns(pl.lit(label).alias("metric")), view=band, **options)
