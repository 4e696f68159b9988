"""The browser's requests and their answers (docs/widget.md, "How data travels").

The browser sends ``{"kind": ..., "id": n, ...}``; `answer` finds the handler registered for
the kind and returns ``({"kind": ..., "id": n, "ok": True, ...}, buffers)``, or
``{"ok": False, "error": "..."}`` when anything failed: every request gets an answer, so
nothing waits for a timeout. A handler takes the widget and the request and returns the
reply's body and its binary buffers (Arrow IPC, or a file's bytes).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from traitlets import TraitError

from rungroup.engine.grouping import LABEL_SEPARATOR
from rungroup.widget import compare
from rungroup.widget.empty import empty_message, metrics_without_values
from rungroup.widget.filenames import export_name
from rungroup.widget.keys import best_split
from rungroup.widget.table import PAGE_SIZE, table_page

if TYPE_CHECKING:
    from rungroup.widget.explorer import Explorer

Reply = tuple[dict[str, Any], list[bytes]]
Handler = Callable[["Explorer", Mapping[str, Any]], Reply]

#: The request kinds and their handlers, in the order docs/widget.md lists them.
HANDLERS: dict[str, Handler] = {}


def handles(kind: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[kind] = handler
        return handler

    return register


def answer(widget: Explorer, request: Mapping[str, Any]) -> Reply:
    """Answer one request: ``(reply, buffers)``; a failure is answered and shown in the
    widget (`error`) until the next good `data` reply."""
    kind = request.get("kind")
    request_id = request.get("id")
    try:
        handler = HANDLERS.get(str(kind))
        if handler is None:
            raise ValueError(f"unknown request kind {kind!r}; valid kinds: {', '.join(HANDLERS)}")
        body, buffers = handler(widget, request)
    except Exception as error:  # every failure is answered, and shown in the widget
        message = describe(error)
        widget._show_error(message, request_failed=True)
        return {"kind": kind, "id": request_id, "ok": False, "error": message}, []
    if kind == "data":
        widget._clear_error(request_failed=True)
    return {"kind": kind, "id": request_id, "ok": True, **body}, buffers


def describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, (ValueError, TypeError, TraitError, KeyError)):
        return text
    return f"{type(error).__name__}: {text}"


def _int_arg(request: Mapping[str, Any], name: str, default: int) -> int:
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


@handles("data")
def _data(widget: Explorer, request: Mapping[str, Any]) -> Reply:
    """The chart: its rows and, unless the browser has it, its spec. The table comes in
    its own reply (`table`), asked for at the same time: the browser draws the chart
    while the kernel builds the table's rows."""
    expected = request.get("view")
    if isinstance(expected, Mapping) and _differs(widget, expected):
        # the browser's change has not arrived yet (a front end whose trait updates and
        # messages travel apart): it asks again
        return {"stale": True}, []
    frame = widget._frame()
    same = request.get("spec_key") == frame.spec.key
    body = {
        "spec": None if same else frame.spec.spec,
        "frame": None if same else frame.spec.frame,
        "spec_key": frame.spec.key,
        "chart_rows": frame.drawn.height,
        "focus_label": frame.focus_label,
        "legend": frame.legend,
        "empty": empty_message(frame.runs, frame.view, widget.search, frame.drawn),
        "no_values": metrics_without_values(frame.runs, frame.view, frame.drawn),
        # what the browser names the chart's image files (the exports' names are Python's)
        "chart_file": _file_name(widget, "chart", ""),
        "timings": dict(frame.timings),
    }
    return body, [frame.chart_ipc]


def _differs(widget: Explorer, expected: Mapping[str, Any]) -> bool:
    """Whether the settings the browser had when it asked differ from the kernel's."""
    for name, value in expected.items():
        if not hasattr(widget, name):
            continue
        mine = getattr(widget, name)
        if isinstance(mine, (list, tuple)) and isinstance(value, list):
            if name == "hidden":
                if sorted(map(str, mine)) != sorted(map(str, value)):
                    return True
            elif list(mine) != value:
                return True
        elif mine != value:
            return True
    return False


@handles("table")
def _table(widget: Explorer, request: Mapping[str, Any]) -> Reply:
    """The table's columns and first page, with the counts the status line shows."""
    frame = widget._frame()
    started = time.perf_counter()
    table = widget._table()
    page = table_page(table, 0, _int_arg(request, "limit", PAGE_SIZE))
    members = frame.membership
    group_label = None
    if frame.focus_label is not None:
        # a group page: the status line counts the group's runs
        members = members.filter(pl.col("series") == frame.focus_label)
        entry = frame.legend["entries"][0] if frame.legend["entries"] else {}
        group_label = str(entry.get("label", frame.focus_label))
    body = {
        "table": table.meta(),
        "runs": members["id"].n_unique() if frame.focus_label is not None else len(frame.runs),
        "groups": members["series"].n_unique() if frame.view.grouping else 0,
        "group_label": group_label,
        "focus_label": frame.focus_label,
        "timings": {"table_ms": 1000 * (time.perf_counter() - started)},
    }
    return body, [page]


@handles("rows")
def _rows(widget: Explorer, request: Mapping[str, Any]) -> Reply:
    table = widget._table()
    offset = _int_arg(request, "offset", 0)
    limit = _int_arg(request, "limit", PAGE_SIZE)
    return {"offset": offset, "total": table.total}, [table_page(table, offset, limit)]


@handles("hide")
def _hide(widget: Explorer, request: Mapping[str, Any]) -> Reply:
    row_kind = request.get("row_kind")
    key = str(request.get("key"))
    if row_kind == "run":
        ids = {key}
    elif row_kind in ("group", "branch"):
        membership = widget._frame().membership
        series = pl.col("series")
        # a branch of the tree holds every group whose label starts with its own
        inside = (
            series == key if row_kind == "group" else series.str.starts_with(key + LABEL_SEPARATOR)
        )
        ids = set(membership.filter(inside)["id"].to_list())
        if not ids:
            raise ValueError(f"no {row_kind} {key!r} in the table")
    else:
        raise ValueError(f"row_kind={row_kind!r} is not valid; choose one of: run, group, branch")
    widget.set_hidden(ids, bool(request.get("hide")))
    return {"hidden": len(widget.view.hidden)}, []


@handles("suggest_key")
def _suggest_key(widget: Explorer, request: Mapping[str, Any]) -> Reply:
    """The key "+" adds to the grouping: the one that best splits the current groups."""
    frame = widget._frame()
    return {"key": best_split(frame.runs, frame.view, widget.info["columns"])}, []


@handles("compare")
def _compare(widget: Explorer, request: Mapping[str, Any]) -> Reply:
    """The Compare view: its table's rows, their columns' labels, the forest plot's spec."""
    return compare.reply(widget._compared())


#: What the export menu offers: ``what`` -> (frame, suffix, what the file name says, MIME type).
_EXPORTS = {
    "csv": ("aggregated", ".csv", "aggregated", "text/csv"),
    "parquet": ("aggregated", ".parquet", "aggregated", "application/vnd.apache.parquet"),
    "groups_csv": ("summary", ".csv", "groups", "text/csv"),
    "compare_csv": ("compare", ".csv", "compare", "text/csv"),
    "compare_parquet": ("compare", ".parquet", "compare", "application/vnd.apache.parquet"),
}


def _file_name(widget: Explorer, what: str, suffix: str) -> str:
    frame = widget._frame()
    metrics = frame.drawn["metric"].cast(pl.String).unique(maintain_order=True).to_list()
    if what.startswith("compare"):
        metrics = [compare.metric_of(widget.compare, frame.view, frame.runs)]
    return export_name(widget.runs, frame.view, metrics, what, suffix, frame.focus_label or "")


@handles("export")
def _export(widget: Explorer, request: Mapping[str, Any]) -> Reply:
    what = request.get("what")
    if what in ("recipe", "compare_recipe"):
        recipe = widget.recipe("compare" if what == "compare_recipe" else "aggregated")
        data = (json.dumps(recipe, indent=2, sort_keys=True) + "\n").encode()
        name = _file_name(
            widget, "compare-recipe" if what == "compare_recipe" else "recipe", ".json"
        )
        return {"filename": name, "mime": "application/json"}, [data]
    if what not in _EXPORTS:
        raise ValueError(
            f"what={what!r} is not valid; choose one of: "
            f"{', '.join(_EXPORTS)}, recipe, compare_recipe"
        )
    frame, suffix, holds, mime = _EXPORTS[str(what)]
    with tempfile.TemporaryDirectory(prefix="rungroup-export-") as folder:
        data = widget.export(Path(folder) / f"export{suffix}", frame).read_bytes()
    return {"filename": _file_name(widget, holds, suffix), "mime": mime}, [data]
