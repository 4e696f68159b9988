"""`rungroup.Explorer`: the runs table with group rows and the grouped charts, as one anywidget.

The widget is a thin layer over the engine (DESIGN.md): its traits are the fields of `View`
(same names), `w.view` is that `View`, and every reply is computed by `aggregate()`,
`summarize()` and `chart()` from the runs and the view.

Small settings travel as synced traits. Bulk data (chart series, table rows, exported files)
travels as binary buffers (Arrow IPC) in id-tagged request/response custom messages:
the browser sends ``{"kind": ..., "id": n, ...}`` and gets ``{"kind": ..., "id": n, "ok": True,
...}`` back with the buffers, or ``{"ok": False, "error": "..."}``: nothing times out silently.
See `rungroup.protocol` for the payload builders and docs/widget.md for the message list.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import tempfile
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import polars as pl
import traitlets
from traitlets import Bool, Dict, Float, Int, List, TraitError, Unicode

from rungroup import protocol
from rungroup.chart import chart
from rungroup.engine import dense
from rungroup.engine.aggregate import aggregate, aggregate_drawn
from rungroup.engine.summarize import summarize
from rungroup.engine.xaxis import categorical_codes, code_positions
from rungroup.export import export, recipe_dict
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

if TYPE_CHECKING:
    from rungroup.sources.followers import Follower

_STATIC = Path(__file__).parent / "static"
#: The widget's default for `View.points`: a chart panel is a few hundred pixels wide, and
#: 400 points per series keep an update of 10 groups x 4 metrics under 500 KB on the wire.
#: ``Explorer(..., points=1500)`` gives the engine's default back.
WIDGET_POINTS = 400
_DEFAULT = View(points=WIDGET_POINTS)
#: Computed frames kept per widget (each is what the charts of one setting show).
FRAME_CACHE = 4

#: Traits that are `View` fields (same names, same order as the dataclass).
VIEW_FIELDS: tuple[str, ...] = View.field_names()
#: Widget-only settings: what the table shows and which group page is open.
UI_FIELDS: tuple[str, ...] = ("search", "focus", "sort", "expanded", "table_columns")
#: Live mode: follow the source while runs are written (see `Explorer.refresh`).
LIVE_FIELDS: tuple[str, ...] = ("live", "refresh_interval")
#: Default and smallest refresh interval of live mode, in seconds.
REFRESH_INTERVAL = 2.0
MIN_REFRESH_INTERVAL = 0.2


def _trait_value(name: str, value: Any) -> Any:
    """A `View` field value as its trait value (tuples and sets become lists)."""
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _view_value(name: str, value: Any) -> Any:
    """A trait value as the `View` field value."""
    if name == "hidden":
        return frozenset(value)
    if isinstance(value, list):
        return tuple(value)
    return value


@dataclass
class _Frame:
    """Everything the charts show for one (view, search, focus): computed once, then cached."""

    runs: Runs
    view: View
    #: The chart's rows: the Aggregate without the statistics its line and band are not
    #: made of (`aggregate_drawn`), or a group page's whole frame.
    drawn: pl.DataFrame
    spec: dict[str, Any]
    spec_key: str
    chart_ipc: bytes
    focus_label: str | None
    #: Milliseconds spent in the engine (aggregate), chart() and the Arrow payload.
    timings: dict[str, float]
    _aggregated: pl.DataFrame | None = None
    _membership: pl.DataFrame | None = None

    @property
    def membership(self) -> pl.DataFrame:
        """Which runs are in which series (`protocol.membership`): for the table, computed
        after the chart has been sent."""
        if self._membership is None:
            self._membership = protocol.membership(self.runs, self.view)
        return self._membership

    @property
    def aggregated(self) -> pl.DataFrame:
        """The Aggregate with every statistic, computed when first asked for (a repaint
        needs only `drawn`, whose rows and numbers are its own)."""
        if self._aggregated is None:
            self._aggregated = aggregate(self.runs, view=self.view)
        return self._aggregated


class Explorer(anywidget.AnyWidget):
    """Explore runs grouped into experiments: a runs table with group rows and grouped charts.

    ``Explorer(source, **settings)`` takes anything `rungroup.load` accepts (or a `Runs`) and
    any `View` field as a keyword (``group_by="config.lr"``, ``band="ci"``, ...). Every field
    is a synced trait with the same name; ``w.view`` is the whole `View`.
    """

    _esm = _STATIC / "widget.js"
    _css = _STATIC / "widget.css"

    # --- View fields (one trait each, same name; defaults are View()'s) -----------------------
    metrics = List(Unicode(), default_value=list(_DEFAULT.metrics)).tag(sync=True)
    group_by = List(Unicode(), default_value=list(_DEFAULT.group_by)).tag(sync=True)
    grouping = Bool(_DEFAULT.grouping).tag(sync=True)
    reverse = Bool(_DEFAULT.reverse).tag(sync=True)
    x = Unicode(_DEFAULT.x).tag(sync=True)
    line = Unicode(_DEFAULT.line).tag(sync=True)
    band = Unicode(_DEFAULT.band).tag(sync=True)
    quantiles = List(Float(), default_value=list(_DEFAULT.quantiles), minlen=2, maxlen=2).tag(
        sync=True
    )
    ci_level = Float(_DEFAULT.ci_level).tag(sync=True)
    ci_method = Unicode(_DEFAULT.ci_method).tag(sync=True)
    bootstrap_samples = Int(_DEFAULT.bootstrap_samples).tag(sync=True)
    seed = Int(_DEFAULT.seed).tag(sync=True)
    align = Unicode(_DEFAULT.align).tag(sync=True)
    points = Int(_DEFAULT.points).tag(sync=True)
    min_runs = Int(_DEFAULT.min_runs).tag(sync=True)
    smoothing = Unicode(_DEFAULT.smoothing).tag(sync=True)
    smoothing_param = Float(_DEFAULT.smoothing_param).tag(sync=True)
    smooth_order = Unicode(_DEFAULT.smooth_order).tag(sync=True)
    log_y = Bool(_DEFAULT.log_y).tag(sync=True)
    hidden = List(Unicode(), default_value=[]).tag(sync=True)

    # --- widget state (not part of the View)
    #: Run filter: runs whose name, id, group, job type or tags contain it (case-insensitive).
    search = Unicode("").tag(sync=True)
    #: The group page that is open (a series label), "" for all groups.
    focus = Unicode("").tag(sync=True)
    #: Table sort: ``[column, "asc" | "desc"]`` or ``[]``.
    sort = List(Unicode(), default_value=[], maxlen=2).tag(sync=True)
    #: Group rows opened to show their runs (series labels).
    expanded = List(Unicode(), default_value=[]).tag(sync=True)
    #: Table columns shown, in order; ``[]`` = a default choice.
    table_columns = List(Unicode(), default_value=[]).tag(sync=True)
    #: The last error (shown in the widget); "" when everything worked.
    error = Unicode("").tag(sync=True)
    #: Choices for the controls: metrics, groupable columns with distinct counts, ...
    info = Dict().tag(sync=True)

    # --- live mode
    #: Follow the source while runs are written: poll it every `refresh_interval` seconds.
    live = Bool(False).tag(sync=True)
    #: Seconds between two polls of the source in live mode (at least 0.2).
    refresh_interval = Float(REFRESH_INTERVAL).tag(sync=True)
    #: Bumped whenever the runs change (a live poll): the browser asks for its data again.
    revision = Int(0).tag(sync=True)
    #: Whether the widget has a source to follow (False for a `Runs` object): the Live toggle.
    followable = Bool(False).tag(sync=True)

    def __init__(self, runs_or_source: Any, /, **settings: Any) -> None:
        valid = (*VIEW_FIELDS, *UI_FIELDS, *LIVE_FIELDS)
        unknown = [name for name in settings if name not in valid]
        if unknown:
            raise TypeError(
                f"Explorer() got unknown setting(s) {', '.join(map(repr, unknown))}; "
                f"valid settings: {', '.join(valid)}"
            )
        live = bool(settings.pop("live", False))
        interval = _check_interval(settings.pop("refresh_interval", REFRESH_INTERVAL))
        #: What live mode follows (None for a `Runs` object or frames: nothing to follow).
        self._source: Any = None if isinstance(runs_or_source, Runs) else runs_or_source
        self._follower: Follower | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._poll_failed = False
        #: Polls made by live mode, and what the last one cost (for tests and benchmarks).
        self.polls = 0
        self.last_poll: dict[str, float] = {}
        if live and not _followable(self._source):
            raise ValueError(_NOT_FOLLOWABLE)
        if live:
            runs, _ = self._get_follower().poll()
        elif isinstance(runs_or_source, Runs):
            runs = runs_or_source.collect()
        else:
            runs = _load(runs_or_source).collect()
        view_settings = {k: v for k, v in settings.items() if k in VIEW_FIELDS}
        ui_settings = {k: v for k, v in settings.items() if k in UI_FIELDS}
        view = View(**{"points": WIDGET_POINTS, **view_settings})
        self._runs = runs
        self._finals_cache: pl.DataFrame | None = None
        #: Each (run, metric)'s step and value at its largest step, kept up to date from what
        #: a live poll appended (None: derived from the whole history when next needed).
        self._last: _LastValues | None = None
        #: The last few computed frames: going back to a grouping is instant.
        self._frame_cache: OrderedDict[Any, _Frame] = OrderedDict()
        self._table_cache: tuple[Any, protocol.Table] | None = None
        #: Whether `error` came from a failed request (cleared by the next good reply) or
        #: from an invalid change made in the browser (cleared by the next valid change).
        self._request_error = False
        _check_against_runs(view, self._runs)
        traits = {name: _trait_value(name, getattr(view, name)) for name in VIEW_FIELDS}
        super().__init__(
            **traits,
            **ui_settings,
            info=_info(self._runs),
            refresh_interval=interval,
            followable=_followable(self._source),
        )
        self.on_msg(self._on_message)
        self.observe(self._on_live, names=["live", "refresh_interval"])
        if live:
            self.live = True

    # --- live mode

    @traitlets.validate("live")
    def _validate_live(self, proposal: Mapping[str, Any]) -> bool:
        value = bool(proposal["value"])
        if value and not _followable(self._source):
            raise TraitError(_NOT_FOLLOWABLE)
        return value

    @traitlets.validate("refresh_interval")
    def _validate_refresh_interval(self, proposal: Mapping[str, Any]) -> float:
        try:
            return _check_interval(proposal["value"])
        except ValueError as error:
            raise TraitError(str(error)) from error

    def _on_live(self, change: Mapping[str, Any]) -> None:
        self._cancel_timer()
        if self.live:
            self._schedule()

    def _get_follower(self) -> Follower:
        if self._follower is None:
            from rungroup.sources.followers import follow

            self._follower = follow(self._source)
        return self._follower

    def _schedule(self) -> None:
        """Poll again in `refresh_interval` seconds, on the kernel's own event loop: the poll
        runs on the main thread between cell executions, never beside them."""
        self._cancel_timer()
        self._timer = _event_loop().call_later(
            self.refresh_interval, _tick_widget, weakref.ref(self)
        )

    def _cancel_timer(self) -> None:
        timer = getattr(self, "_timer", None)  # None too when __init__ failed (__del__ closes)
        if timer is not None:
            timer.cancel()
        self._timer = None

    def _tick(self) -> None:
        """One live poll (what the timer calls), then the next one scheduled."""
        self._timer = None
        if not self.live or self.comm is None:
            return
        try:
            self.refresh()
        except Exception as error:  # shown in the widget; live mode goes on
            self.error = _describe(error)
            self._request_error = True
            self._poll_failed = True
        else:
            if self._poll_failed and self._request_error:
                self.error = ""  # the source is readable again
            self._poll_failed = False
        finally:
            if self.live and self.comm is not None:
                self._schedule()

    def refresh(self) -> bool:
        """Read what changed in the source (a follower's poll) and, if anything did, show it:
        the runs are replaced and `revision` tells the browser to ask for its data again.
        Returns whether anything changed. Live mode calls it every `refresh_interval`."""
        if not _followable(self._source):
            raise ValueError(_NOT_FOLLOWABLE)
        started = time.perf_counter()
        follower = self._get_follower()
        before = self._runs
        runs, changed = follower.poll()
        polled = time.perf_counter()
        self.polls += 1
        if changed:
            # What the follower appended to the runs shown until now, if it says (the store's
            # does): the final values are then updated from those rows alone.
            appended = getattr(follower, "appended", None)
            extends = appended is not None and getattr(follower, "appended_to", None) is before
            self._set_runs(runs, appended if extends else None)
            self.revision += 1
        self.last_poll = {
            "poll_ms": 1000 * (polled - started),
            "update_ms": 1000 * (time.perf_counter() - polled),
            "changed": float(changed),
        }
        return changed

    def close(self) -> None:
        """Close the widget; live polling stops."""
        self._cancel_timer()
        super().close()

    # --- the View

    @property
    def view(self) -> View:
        """The `View` that the traits describe (what the charts show)."""
        return View(**{name: _view_value(name, getattr(self, name)) for name in VIEW_FIELDS})

    @view.setter
    def view(self, view: View) -> None:
        if not isinstance(view, View):
            raise TypeError(f"view must be a rungroup.View, got {type(view).__name__}")
        self.update(**{name: getattr(view, name) for name in VIEW_FIELDS})

    def update(self, **settings: Any) -> None:
        """Change several settings at once (validated together, one refresh)."""
        valid = (*VIEW_FIELDS, *UI_FIELDS, *LIVE_FIELDS)
        unknown = [name for name in settings if name not in valid]
        if unknown:
            raise TypeError(
                f"unknown setting(s) {', '.join(map(repr, unknown))}; valid settings: "
                f"{', '.join(valid)}"
            )
        view_settings = {k: v for k, v in settings.items() if k in VIEW_FIELDS}
        view = self.view.replace(**view_settings)
        _check_against_runs(view, self._runs)
        with self.hold_trait_notifications():
            for name, value in settings.items():
                setattr(self, name, _trait_value(name, getattr(view, name, value)))

    @traitlets.validate(*VIEW_FIELDS)
    def _validate_view_field(self, proposal: Mapping[str, Any]) -> Any:
        name = proposal["trait"].name
        value = proposal["value"]
        try:
            fields = {n: _view_value(n, getattr(self, n)) for n in VIEW_FIELDS}
            fields[name] = _view_value(name, value)
            view = View(**fields)
            if hasattr(self, "_runs"):
                _check_against_runs(view, self._runs, only=name)
        except (TypeError, ValueError) as error:
            raise TraitError(str(error)) from error
        return _trait_value(name, getattr(view, name))

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Changes from the browser: an invalid one is shown in the widget and undone there."""
        try:
            super().set_state(sync_data)
        except TraitError as error:
            # Shown until the next valid change (the data reply that follows the undo must
            # not clear it).
            self.error = str(error)
            self._request_error = False
            self.send_state(list(sync_data))
            return
        if self.error and not self._request_error:
            self.error = ""

    # --- data

    @property
    def runs(self) -> Runs:
        """All the runs the widget was given."""
        return self._runs

    @runs.setter
    def runs(self, runs: Runs) -> None:
        if not isinstance(runs, Runs):
            runs = _load(runs)
        self._set_runs(runs.collect())
        self.revision += 1

    def _set_runs(self, runs: Runs, appended: pl.DataFrame | None = None) -> None:
        """Show `runs`; `appended`: the history rows they add to the runs shown until now."""
        if appended is not None:
            # the engine then extends the matrices it keeps instead of reading the history
            dense.extend(self._runs, runs, appended)
        self._runs = runs
        if appended is None:
            self._last = None
        elif self._last is not None and appended.height:
            self._last = _last_values(self._last, appended.lazy())
        self._finals_cache = None
        self._frame_cache.clear()
        self._table_cache = None
        info = _info(self._runs)
        if info != self.info:
            self.info = info

    @property
    def filtered_runs(self) -> Runs:
        """The runs that pass the filter box (hidden runs included)."""
        return protocol.filter_runs(self._runs, self.search)

    @property
    def selected_runs(self) -> list[str]:
        """Ids of the runs that pass the filter and are not hidden: those in the aggregates."""
        hidden = set(self.hidden)
        return [run_id for run_id in self.filtered_runs.ids if run_id not in hidden]

    @property
    def aggregated(self) -> pl.DataFrame:
        """Exactly what the charts show (DESIGN.md's Aggregate schema).

        On a group page it also holds the group's runs, one series each, marked by the
        ``layer`` column (``"group"`` or ``"run"``).
        """
        return self._frame().aggregated

    @property
    def summary(self) -> pl.DataFrame:
        """The group table: one row per group (`rungroup.summarize` of the shown runs)."""
        frame = self._frame()
        return summarize(frame.runs, view=frame.view)

    @property
    def spec(self) -> dict[str, Any]:
        """The Vega-Lite spec the browser renders (its data arrive separately as Arrow)."""
        return self._frame().spec

    def export(self, path: str | Path, what: str = "aggregated") -> Path:
        """Write the aggregated frame (``what="aggregated"``) or the group table
        (``what="summary"``) to `path` (``.csv`` or ``.parquet``), with the View as recipe:
        Parquet key-value metadata, or a JSON sidecar ``<path>.recipe.json`` for CSV."""
        if what not in ("aggregated", "summary"):
            raise ValueError(f"what={what!r} is not valid; choose one of: aggregated, summary")
        frame = self.aggregated if what == "aggregated" else self.summary
        return export(frame, path, view=self.view, extra=self._extra())

    def recipe(self) -> dict[str, Any]:
        """The recipe an export carries: the View, plus the widget's filter and group page."""
        return recipe_dict(self.view, self._extra())

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.search:
            extra["search"] = self.search
        if self.focus:
            extra["focus"] = self.focus
        return extra

    def _export_bytes(self, what: str, suffix: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="rungroup-export-") as folder:
            return self.export(Path(folder) / f"export{suffix}", what).read_bytes()

    def _frame(self) -> _Frame:
        view = self.view
        key = (view, self.search, self.focus, id(self._runs))
        frame = self._frame_cache.get(key)
        if frame is not None:
            self._frame_cache.move_to_end(key)
            return frame
        frame = _compute_frame(self._runs, view, self.search, self.focus)
        self._frame_cache[key] = frame
        while len(self._frame_cache) > FRAME_CACHE:
            self._frame_cache.popitem(last=False)
        return frame

    def _finals(self) -> pl.DataFrame:
        """`protocol.final_values` of the runs, from the last values kept between polls."""
        if self._finals_cache is None:
            if self._last is None:
                self._last = _last_values(None, self._runs.history)
            self._finals_cache = _final_values(self._runs, self._last)
        return self._finals_cache

    def _table(self) -> protocol.Table:
        frame = self._frame()
        key = (
            frame.spec_key,
            frame.view,
            self.search,
            self.focus,
            tuple(self.sort),
            tuple(self.expanded),
            tuple(self.table_columns),
        )
        if self._table_cache is not None and self._table_cache[0] == key:
            return self._table_cache[1]
        table = protocol.build_table(
            frame.runs,
            frame.view,
            frame.membership,
            self._finals(),
            focus=frame.focus_label,
            sort=list(self.sort),
            expanded=set(self.expanded),
            columns=list(self.table_columns),
        )
        self._table_cache = (key, table)
        return table

    # --- messages

    def _on_message(self, _widget: Any, content: Any, buffers: Sequence[Any]) -> None:
        if not isinstance(content, dict) or "kind" not in content:
            return  # not ours (anywidget's own messages)
        arrived = time.time()
        reply, out = self.handle(content)
        if isinstance(reply.get("timings"), dict):
            # on the machine's clock, which the browser shares: where a round trip goes
            reply["timings"].update(
                kernel_in_epoch_ms=1000 * arrived, kernel_out_epoch_ms=1000 * time.time()
            )
        self.send(reply, out)

    def handle(self, request: Mapping[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        """Answer one request from the browser: ``(reply, buffers)``, errors included."""
        kind = request.get("kind")
        request_id = request.get("id")
        handler = {
            "data": self._reply_data,
            "table": self._reply_table,
            "rows": self._reply_rows,
            "hide": self._reply_hide,
            "export": self._reply_export,
        }.get(str(kind))
        try:
            if handler is None:
                raise ValueError(
                    f"unknown request kind {kind!r}; valid kinds: data, table, rows, hide, export"
                )
            body, buffers = handler(request)
        except Exception as error:  # every failure is answered, and shown in the widget
            message = _describe(error)
            self.error = message
            self._request_error = True
            return {"kind": kind, "id": request_id, "ok": False, "error": message}, []
        if kind == "data" and self.error and self._request_error:
            self.error = ""
        return {"kind": kind, "id": request_id, "ok": True, **body}, buffers

    def _reply_data(self, request: Mapping[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        """The chart: its rows and, unless the browser has it, its spec. The table comes in
        its own reply (`table`), asked for at the same time: the browser draws the chart
        while the kernel builds the table's rows."""
        frame = self._frame()
        same = request.get("spec_key") == frame.spec_key
        body = {
            "spec": None if same else frame.spec,
            "spec_key": frame.spec_key,
            "chart_rows": frame.drawn.height,
            "focus_label": frame.focus_label,
            "timings": frame.timings,
        }
        return body, [frame.chart_ipc]

    def _reply_table(self, request: Mapping[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        """The table's columns and first page, with the counts the status line shows."""
        frame = self._frame()
        started = time.perf_counter()
        table = self._table()
        page = protocol.table_page(table, 0, _int_arg(request, "limit", 100))
        body = {
            "table": table.meta(),
            "runs": len(frame.runs),
            "groups": frame.membership["series"].n_unique() if frame.view.grouping else 0,
            "focus_label": frame.focus_label,
            "timings": {"table_ms": 1000 * (time.perf_counter() - started)},
        }
        return body, [page]

    def _reply_rows(self, request: Mapping[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        table = self._table()
        offset = _int_arg(request, "offset", 0)
        limit = _int_arg(request, "limit", 100)
        return {"offset": offset, "total": table.total}, [protocol.table_page(table, offset, limit)]

    def _reply_hide(self, request: Mapping[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        row_kind = request.get("row_kind")
        key = str(request.get("key"))
        hide = bool(request.get("hide"))
        if row_kind == "run":
            ids = {key}
        elif row_kind == "group":
            membership = self._frame().membership
            ids = set(membership.filter(pl.col("series") == key)["id"].to_list())
            if not ids:
                raise ValueError(f"no group {key!r} in the table")
        else:
            raise ValueError(f"row_kind={row_kind!r} is not valid; choose one of: run, group")
        self.set_hidden(ids, hide)
        return {"hidden": len(self.hidden)}, []

    def _reply_export(self, request: Mapping[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        what = request.get("what")
        if what == "csv":
            data = self._export_bytes("aggregated", ".csv")
            return {"filename": "rungroup-aggregated.csv", "mime": "text/csv"}, [data]
        if what == "parquet":
            data = self._export_bytes("aggregated", ".parquet")
            name = "rungroup-aggregated.parquet"
            return {"filename": name, "mime": "application/vnd.apache.parquet"}, [data]
        if what == "groups_csv":
            data = self._export_bytes("summary", ".csv")
            return {"filename": "rungroup-groups.csv", "mime": "text/csv"}, [data]
        if what == "recipe":
            data = (json.dumps(self.recipe(), indent=2, sort_keys=True) + "\n").encode()
            return {"filename": "rungroup-recipe.json", "mime": "application/json"}, [data]
        raise ValueError(
            f"what={what!r} is not valid; choose one of: csv, parquet, groups_csv, recipe"
        )

    def set_hidden(self, run_ids: set[str] | Sequence[str], hide: bool = True) -> None:
        """Hide (or show again) runs: hidden runs leave the aggregates and the charts."""
        current = set(self.hidden)
        current = current | set(run_ids) if hide else current - set(run_ids)
        self.hidden = sorted(current)


# --- helpers

_NOT_FOLLOWABLE = (
    "live=True needs a source to follow (a store folder, an MLflow store, TensorBoard logs, "
    "W&B run folders, ...): Explorer(path, live=True); a Runs object or frames cannot change"
)


def _followable(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike))


def _check_interval(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"refresh_interval must be a number of seconds, got {value!r}")
    if value < MIN_REFRESH_INTERVAL:
        raise ValueError(
            f"refresh_interval must be at least {MIN_REFRESH_INTERVAL} seconds, got {value!r}"
        )
    return float(value)


def _event_loop() -> asyncio.AbstractEventLoop:
    """The kernel's asyncio loop (ipykernel runs one on the main thread)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return asyncio.get_event_loop_policy().get_event_loop()


def _tick_widget(ref: weakref.ReferenceType[Explorer]) -> None:
    widget = ref()
    if widget is not None:
        widget._tick()


def _load(source: Any) -> Runs:
    import rungroup

    return rungroup.load(source)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, (ValueError, TypeError, TraitError, KeyError)):
        return text
    return f"{type(error).__name__}: {text}"


def _int_arg(request: Mapping[str, Any], name: str, default: int) -> int:
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class _LastValues:
    """Each (run, metric)'s largest step and its value there (the last logged of several at
    that step), by the history's categorical codes: numpy arrays, so that merging a poll's
    appended rows costs one sort of them and no query (a live widget does it every poll)."""

    run: np.ndarray
    metric: np.ndarray
    #: the step (null: the smallest step, as a sort puts it first)
    step: np.ndarray
    value: np.ndarray
    #: False where the value is null
    valid: np.ndarray


_NULL_STEP = np.iinfo(np.int64).min


def _last_values(last: _LastValues | None, rows: pl.LazyFrame) -> _LastValues:
    """`_LastValues` of the history `rows`, or of `last`'s history followed by `rows`."""
    frame = (
        rows.select(
            pl.col("run_id").cast(pl.Categorical()).to_physical(),
            pl.col("metric").cast(pl.Categorical()).to_physical(),
            pl.col("step").fill_null(_NULL_STEP),
            pl.col("value").cast(pl.Float64),
            pl.col("value").is_not_null().alias("valid"),
        )
        .drop_nulls(["run_id", "metric"])  # not a point of any run's metric
        .collect()
    )
    columns = [frame[name].to_numpy() for name in ("run_id", "metric", "step", "value", "valid")]
    if last is not None:
        # `last` first: at an equal step the appended row, logged later, wins
        old = (last.run, last.metric, last.step, last.value, last.valid)
        columns = [np.concatenate((a, b)) for a, b in zip(old, columns, strict=True)]
    run, metric, step, value, valid = columns
    order = np.lexsort((step, metric, run))  # stable: rows at one step stay in logged order
    run, metric = run[order], metric[order]
    ends = np.flatnonzero(np.append((run[1:] != run[:-1]) | (metric[1:] != metric[:-1]), True))
    if run.size == 0:
        ends = ends[:0]
    picked = order[ends]
    return _LastValues(run[ends], metric[ends], step[picked], value[picked], valid[picked])


def _codes(names: list[str]) -> np.ndarray:
    codes = categorical_codes(pl.Categorical(), names)
    assert codes is not None  # the dtype is categorical
    return codes


def _final_values(runs: Runs, last: _LastValues) -> pl.DataFrame:
    """`protocol.final_values(runs)` from `_last_values(runs)`: ``id``, ``m:<metric>``..."""
    base = runs.runs.select("id")
    metrics = runs.metrics
    if last.run.size == 0 or not metrics:
        return base
    rows = code_positions(last.run, _codes(runs.ids))
    columns = code_positions(last.metric, _codes(metrics))
    keep = (rows >= 0) & (columns >= 0)
    rows, columns = rows[keep], columns[keep]
    table = np.full((len(metrics), base.height), np.nan)
    table[columns, rows] = last.value[keep]
    missing = np.ones(table.shape, dtype=bool)
    missing[columns, rows] = ~last.valid[keep]
    return base.with_columns(
        pl.Series(f"{protocol.METRIC}{name}", table[i]).scatter(np.flatnonzero(missing[i]), None)
        for i, name in enumerate(metrics)
    )


def _info(runs: Runs) -> dict[str, Any]:
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


def _check_against_runs(view: View, runs: Runs, only: str | None = None) -> None:
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


def _chart(aggregated: pl.DataFrame, view: View) -> Any:
    """`rungroup.chart()` without its rows (they travel as Arrow), sized for the widget."""
    return chart(aggregated, view=view, inline=False, width=300, height=200)


#: Prepared specs by shape (see `_spec`); a few, for going back and forth between settings.
_SPECS: dict[Any, tuple[dict[str, Any], list[str], str]] = {}


def _spec(
    aggregated: pl.DataFrame, view: View, *, focus: bool = False
) -> tuple[dict[str, Any], list[str], str]:
    """The prepared spec, its data fields and key. Building an Altair chart costs a few hundred
    milliseconds, and most changes (group-by, filter, hidden runs, the group page opened) keep
    its shape: the spec depends on the metrics drawn, the x type and the settings that titles
    and marks show, not on which runs form which series (the colour order travels as data).
    So specs are reused for views that differ only in `group_by`, `reverse` and `hidden`, and
    a group page's spec (`focus`: the group's line and band over its runs) for every group."""
    key = (
        tuple(aggregated["metric"].unique(maintain_order=True).to_list()),
        aggregated.schema["x"],
        aggregated.height == 0,
        view.replace(group_by=(), reverse=False, hidden=frozenset()),
        focus,
    )
    cached = _SPECS.get(key)
    if cached is None:
        if focus:
            base = _chart(aggregated.filter(pl.col("layer") == "group"), view)
            chart_spec = protocol.focus_spec(protocol.chart_dict(base), view)
        else:
            chart_spec = protocol.chart_dict(_chart(aggregated, view))
        spec, fields = protocol.prepare_spec(chart_spec)
        cached = (spec, fields, protocol.spec_key(spec))
        if len(_SPECS) >= 32:
            _SPECS.pop(next(iter(_SPECS)))
        _SPECS[key] = cached
    return cached


def _compute_frame(runs: Runs, view: View, search: str, focus: str) -> _Frame:
    started = time.perf_counter()
    shown = protocol.filter_runs(runs, search)
    membership = None
    focus_label: str | None = None
    if focus and view.grouping:
        membership = protocol.membership(shown, view)
        if membership.filter(pl.col("series") == focus).height:
            focus_label = focus
    grouped = time.perf_counter()
    if focus_label is not None and membership is not None:
        members = set(membership.filter(pl.col("series") == focus_label)["id"].to_list())
        group_runs = shown.select_ids(
            [i for i in shown.ids if i in members and i not in view.hidden]
        )
        drawn = protocol.focus_frame(group_runs, view, focus_label)
        spec, fields, spec_key = _spec(drawn, view, focus=True)
    else:
        # the shown runs, not `visible`: view.hidden leaves the hidden ones out, and the same
        # Runs object every time lets the engine reuse its matrices (see engine/dense.py)
        drawn = aggregate_drawn(shown, view)
        aggregated_at = time.perf_counter()
        spec, fields, spec_key = _spec(drawn, view)
    charted = time.perf_counter()
    chart_ipc = protocol.chart_payload(drawn, fields)
    done = time.perf_counter()
    if focus_label is not None:
        aggregated_at = charted
    timings = {
        "groups_ms": 1000 * (grouped - started),
        "aggregate_ms": 1000 * (aggregated_at - grouped),
        "chart_ms": 1000 * (charted - aggregated_at),
        "payload_ms": 1000 * (done - charted),
    }
    return _Frame(
        runs=shown,
        view=view,
        drawn=drawn,
        spec=spec,
        spec_key=spec_key,
        chart_ipc=chart_ipc,
        focus_label=focus_label,
        timings=timings,
        _aggregated=drawn if focus_label is not None else None,
        _membership=membership,
    )
