"""A self-contained HTML report: the settings, the group table and one chart per metric.

Everything is inlined (vega, vega-lite and vega-embed come from vl-convert's bundle), so the
file opens offline in any browser and makes no request at all.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from rungroup._extras import require
from rungroup.runs import Runs
from rungroup.view import View

#: The most metrics a report draws unless told otherwise: every panel costs time, memory and
#: HTML, and a store with thousands of metrics would otherwise take minutes and gigabytes.
MAX_METRICS = 100

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem;
       color: #1f2328; background: #fff; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
.meta { color: #59636e; margin: 0 0 1.25rem; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #d1d9e0; padding: .3rem .7rem; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f6f8fa; }
.settings td:first-child { color: #59636e; }
.chart { margin: 1rem 0 2rem; }
@media (prefers-color-scheme: dark) {
  body { color: #e6edf3; background: #0d1117; }
  th { background: #151b23; } th, td { border-color: #3d444d; }
  .meta, .settings td:first-child { color: #9198a1; }
}
"""


def _script_json(value: Any) -> str:
    """JSON that cannot close the <script> element it sits in."""
    return json.dumps(value).replace("</", "<\\/").replace("<!--", "<\\!--")


def _cell(value: Any) -> str:
    if value is None:
        return "<td></td>"
    if isinstance(value, float):
        return f'<td class="number">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="number">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(frame: pl.DataFrame, columns: list[str], headers: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    rows = "".join(
        "<tr>" + "".join(_cell(row[c]) for c in columns) + "</tr>"
        for row in frame.iter_rows(named=True)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _settings_table(view: View) -> str:
    defaults = View().to_dict()
    rows = []
    for key, value in view.to_dict().items():
        marker = "" if defaults.get(key) == value else " *"
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        if not shown:
            shown = {"metrics": "(all)", "hidden": "(none)"}.get(key, "")
        rows.append(f"<tr><td>{html.escape(key)}{marker}</td><td>{html.escape(shown)}</td></tr>")
    return f'<table class="settings"><tbody>{"".join(rows)}</tbody></table>'


def _vega_bundle() -> str:
    """vl-convert's own build of vega, vega-lite and vega-embed, safe inside <script>.

    Escaping "</script" keeps the browser from ending the element inside a string literal.
    """
    vl_convert = require("vl_convert", "save", "the HTML report (its inlined vega)")
    bundle: str = vl_convert.javascript_bundle("window.vegaEmbed = vegaEmbed;")
    return bundle.replace("</script", "<\\/script")


def _embed(spec: dict[str, Any]) -> str:
    """The script that draws `spec` into #chart; the spec's text is JSON, never HTML."""
    return (
        "vegaEmbed('#chart', " + _script_json(spec) + ", {renderer: 'svg', "
        "actions: {export: true, source: false, compiled: false, editor: false}});"
    )


def chart_page(spec: dict[str, Any], *, title: str = "") -> str:
    """One chart (a Vega-Lite spec) as a self-contained HTML page, vega inlined.

    What `rungroup chart -o fig.html` writes instead of Altair's HTML, which loads vega from
    a CDN and embeds the spec where a run name holding ``</script>`` ends the script.
    """
    body = '<div class="chart" id="chart"></div>'
    return _page(title or "rungroup chart", body, _embed(spec))


def _page(title: str, body: str, embed: str) -> str:
    """A self-contained HTML page: `body` (already escaped), vega inlined, then `embed`."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
{body}
<script>{_vega_bundle()}</script>
<script>{embed}</script>
</body>
</html>
"""


def render_report(
    runs: Runs, view: View, *, source: str = "", max_metrics: int = MAX_METRICS
) -> str:
    """The report as one HTML string; a ValueError if it would draw over `max_metrics`."""
    import rungroup

    wanted = len(view.metrics) if view.metrics else len(runs.metrics)
    if wanted > max_metrics:
        raise ValueError(
            f"the report would draw {wanted:,} metrics, more than the limit of {max_metrics:,} "
            "(each takes time and memory); choose some with --metrics, or raise the limit "
            "with --max-metrics (max_metrics= in Python)"
        )
    frame = rungroup.aggregate(runs, view)
    summary = rungroup.summarize(runs, view)
    metrics = sorted(set(frame["metric"].cast(pl.String).to_list())) if frame.height else []
    # One chart with a panel per metric: the panels share one colour scale, so a group has
    # the same colour everywhere, as in the table's swatches.
    # Colours from every run (rungroup.palette), as the widget gives them.
    from rungroup.palette import group_colours

    colours = group_colours(runs, view)
    spec = rungroup.chart(
        frame, view=view, columns=1, width=720, height=300, colours=colours
    ).to_dict()
    metric_columns = [
        c for c in summary.columns if any(c in (f"{m}.mean", f"{m}.std", f"{m}.n") for m in metrics)
    ]
    group_columns = ["series", "runs", "states", *metric_columns]
    group_headers = ["group" if view.grouping else "run", "runs", "states", *metric_columns]
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    charts = '<h2>Charts</h2><div class="chart" id="chart"></div>' if metrics else ""
    title = f"rungroup report: {source}" if source else "rungroup report"
    embed = _embed(spec) if metrics else ""
    body = f"""<h1>{html.escape(title)}</h1>
<p class="meta">{len(runs)} runs, {summary.height} {"groups" if view.grouping else "runs shown"},
made {created} by rungroup {html.escape(rungroup.__version__)}.
Settings (changed ones marked *):</p>
{_settings_table(view)}
<h2>{"Groups" if view.grouping else "Runs"}</h2>
{_table(summary, group_columns, group_headers)}
{charts}"""
    return _page(title, body, embed)


def write_report(
    runs: Runs, view: View, path: str | Path, *, source: str = "", max_metrics: int = MAX_METRICS
) -> Path:
    """Write the report to `path` (an explicitly named output file is replaced)."""
    target = Path(path)
    html_text = render_report(runs, view, source=source, max_metrics=max_metrics)
    target.write_text(html_text, encoding="utf-8")
    return target
