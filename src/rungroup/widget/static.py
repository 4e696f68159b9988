"""What a saved notebook shows of an Explorer where no widget manager runs.

Jupyter front ends with a widget manager (JupyterLab, Notebook 7, VS Code) render the widget
view; nbconvert's HTML, GitHub and offline viewers cannot run a widget, and nbconvert ranks
the widget view above every other type of the same output, so an image in the widget's own
bundle would never be shown there. Displaying an Explorer therefore makes two outputs:

1. the fallback: an image of the chart the widget shows (a PNG rendered by vl-convert from
   `rungroup.chart.chart` of the same rows, in the same colours, on an opaque background), as
   ``text/html`` (an ``<img>`` in a ``div.rungroup-static``) and ``image/png``, with the
   summary as ``text/plain``;
2. the widget view, whose ``text/plain`` is the summary.

Where the widget renders, its front end hides the fallback output just before it (the
``rungroup-static`` marker); a saved notebook opened without a kernel, nbconvert and GitHub
show the image. The image is the chart as displayed (later changes in the widget are not
redrawn into it). A failure to render leaves the image out (logged), never the widget.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import polars as pl

from rungroup.chart import CHART_COLUMNS, chart, series_title, x_title

if TYPE_CHECKING:
    from rungroup.widget.explorer import Explorer

log = logging.getLogger(__name__)

#: The static image's panels (px) and their background: white reads on any page.
WIDTH = 320
HEIGHT = 200
BACKGROUND = "white"
#: Points a line of the image is drawn from, at most (about).
POINTS = 160


def summary(widget: Explorer) -> str:
    """A readable summary of what the widget shows, for ``text/plain``."""
    frame = widget._frame()
    view = frame.view
    drawn = frame.drawn
    metrics = drawn["metric"].cast(pl.String).unique(maintain_order=True).to_list()
    runs = len(frame.runs) - len([r for r in frame.runs.ids if r in view.hidden])
    lines = [f"rungroup.Explorer: {runs} runs"]
    if frame.focus_label is not None:
        page = [e for e in frame.legend["entries"] if e.get("run")]
        lines[0] += f"; group page {series_title(view)} = {frame.focus_label} ({len(page)} runs)"
    elif view.grouping:
        groups = drawn["series"].n_unique()
        lines[0] += f" in {groups} groups by {series_title(view)}"
    if view.grouping:
        band = ", ".join(_band_words(widget))
        lines.append(f"line: {view.line}" + (f", band: {band}" if band else ""))
    else:
        lines[0] += ", one line each"
    lines.append(f"metrics: {', '.join(metrics) or '(none)'}; x: {x_title(view)}")
    if view.smoothing != "none":
        lines.append(f"smoothing: {view.smoothing} {view.smoothing_param:g}")
    if widget.search:
        lines.append(f"filter: {widget.search!r}")
    if view.hidden:
        lines.append(f"hidden: {len(view.hidden)} runs")
    return "\n".join(lines)


def _band_words(widget: Explorer) -> list[str]:
    legend = widget._frame().legend
    band = legend.get("band")
    return [str(band)] if band else []


def _thinned(drawn: pl.DataFrame) -> pl.DataFrame:
    """At most about `POINTS` points a line (every k-th, and each line's last): a panel of
    `WIDTH` px shows no more, and vl-convert's time grows with the rows."""
    by = ["series", "metric"]
    lengths = drawn.group_by(by).len()["len"].to_list()
    stride = -(-max(lengths, default=0) // POINTS)
    if stride <= 1:
        return drawn
    place = pl.int_range(pl.len()).over(by)
    return drawn.filter((place % stride == 0) | (place == pl.len().over(by) - 1))


def png(widget: Explorer) -> bytes | None:
    """The widget's current chart as PNG bytes (None if it cannot be rendered)."""
    started = time.perf_counter()
    try:
        import vl_convert

        frame = widget._frame()
        drawn = frame.drawn
        if "layer" in drawn.columns:  # a group page: its group's line and band
            drawn = drawn.filter(pl.col("layer") == "group")
        drawn = drawn.with_columns(
            pl.col("series").cast(pl.String), pl.col("metric").cast(pl.String)
        )
        drawn = _thinned(drawn)
        colours = {e["series"]: e["colour"] for e in frame.legend["entries"]}
        columns = 2 if drawn["metric"].n_unique() > 1 else 1
        # the rows go in after Altair built the spec: Altair copies its data at every step
        spec = (
            chart(
                drawn,
                view=frame.view,
                colours=colours,
                width=WIDTH,
                height=HEIGHT,
                columns=columns,
                inline=False,
            )
            .configure(background=BACKGROUND)
            .to_dict(validate=False)  # built by rungroup.chart, whose tests validate it
        )
        spec["data"]["values"] = json.loads(drawn.select(CHART_COLUMNS).write_json())
        image = bytes(vl_convert.vegalite_to_png(spec, scale=1))
    except Exception as error:  # the widget must display whatever happens here
        log.warning("rungroup: no static image of the chart (%s: %s)", type(error).__name__, error)
        return None
    log.debug("rungroup: static image in %.0f ms", 1000 * (time.perf_counter() - started))
    return image


#: The class of the fallback's wrapper, which the widget's front end looks for.
MARKER = "rungroup-static"


def _summary_or_none(widget: Explorer) -> str | None:
    try:
        return summary(widget)
    except Exception as error:
        log.warning("rungroup: no summary of the widget (%s: %s)", type(error).__name__, error)
        return None


def with_summary(widget: Explorer, data: dict[str, Any]) -> dict[str, Any]:
    """`data` (the widget's own display bundle) with the summary as its ``text/plain``."""
    text = _summary_or_none(widget)
    return {**data, "text/plain": text} if text is not None else dict(data)


def fallback(widget: Explorer) -> dict[str, Any] | None:
    """The fallback output's bundle (None when no image could be made)."""
    image = png(widget)
    if image is None:
        return None
    encoded = base64.b64encode(image).decode("ascii")
    text = _summary_or_none(widget) or "rungroup.Explorer"
    img = f'<img alt="{html.escape(text)}" src="data:image/png;base64,{encoded}"/>'
    return {
        "text/html": f'<div class="{MARKER}">{img}</div>',
        "image/png": encoded,
        "text/plain": text,
    }
