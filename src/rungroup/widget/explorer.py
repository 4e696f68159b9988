"""`rungroup.Explorer`: the runs table with group rows and the grouped charts, as one anywidget.

A thin layer over the engine (docs/architecture.md): one synced trait per `View` field (same
name, generated from the dataclass), `w.view` is that `View`, and every reply is computed by
the engine and `rungroup.chart` from the runs and the view. The widget's working state (its
runs and caches) is its `Session`; live polling is `Live`; the browser's requests are
answered by `messages`. Bulk data travels as Arrow IPC buffers in id-tagged messages
(docs/widget.md, "How data travels").
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import traitlets
from traitlets import Dict, List, TraitError, Unicode

from rungroup.engine.recipe import recipe_extra, recipe_of
from rungroup.export import export, recipe_dict
from rungroup.runs import Runs
from rungroup.view import View, check_against_runs
from rungroup.widget import compare as compare_view
from rungroup.widget import live as live_mode
from rungroup.widget import messages, static
from rungroup.widget.info import info
from rungroup.widget.session import Frame, Session
from rungroup.widget.table import Table, filter_runs
from rungroup.widget.traits import PRESETS, UI_FIELDS, VIEW_FIELDS, ViewTraits

_STATIC = Path(__file__).parent.parent / "static"
#: Live mode: follow the source while runs are written (see `Explorer.refresh`).
LIVE_FIELDS: tuple[str, ...] = ("live", "refresh_interval")
SETTINGS: tuple[str, ...] = (*VIEW_FIELDS, *UI_FIELDS, *LIVE_FIELDS, *compare_view.COMPARE_FIELDS)


class Explorer(live_mode.LiveWidget, ViewTraits):
    """Explore runs grouped into experiments: a runs table with group rows and grouped charts.

    ``Explorer(source, **settings)`` takes anything `rungroup.load` accepts (or a `Runs`) and
    any `View` field as a keyword (``group_by="config.lr"``, ``band="ci"``, ...). Every field
    is a synced trait with the same name; ``w.view`` is the whole `View`.
    """

    _esm = _STATIC / "widget.js"
    _css = _STATIC / "widget.css"

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
    #: What shows beside the runs table: "charts" or "compare" (the Compare view).
    panel = Unicode("charts").tag(sync=True)
    #: The Compare view's settings (`rungroup.widget.compare.DEFAULTS`: metric, reduce, k, at,
    #: baseline, higher_is_better, estimate, sort); missing keys take their defaults.
    compare = Dict(default_value=dict(compare_view.DEFAULTS)).tag(sync=True)

    def __init__(self, runs_or_source: Any, /, **settings: Any) -> None:
        _check_names(settings, "Explorer() got unknown setting(s)")
        live = bool(settings.pop("live", False))
        interval = live_mode.check_interval(
            settings.pop("refresh_interval", live_mode.REFRESH_INTERVAL)
        )
        self._live = live_mode.Live(None if isinstance(runs_or_source, Runs) else runs_or_source)
        if live and not self._live.followable:
            raise ValueError(live_mode.NOT_FOLLOWABLE)
        if live:
            runs = self._live.first()
        elif isinstance(runs_or_source, Runs) and runs_or_source.provider is not None:
            # its history is elsewhere (a database, the out-of-core store): possibly larger
            # than memory, so read only what a view needs, through the provider
            runs = runs_or_source
        elif isinstance(runs_or_source, Runs):
            runs = runs_or_source.collect()
        else:
            runs = _load(runs_or_source).collect()
        view = View(**{**PRESETS, **{k: v for k, v in settings.items() if k in VIEW_FIELDS}})
        check_against_runs(view, runs, pending_ok=True)
        self._session = Session(runs)
        #: Whether `error` came from a failed request (cleared by the next good reply) or
        #: from an invalid change made in the browser (cleared by the next valid change).
        self._request_error = False
        super().__init__(
            **view.to_dict(),  # tuples and sets as lists, as the traits hold them
            **{k: v for k, v in settings.items() if k in UI_FIELDS},
            **{k: v for k, v in settings.items() if k in compare_view.COMPARE_FIELDS},
            info=info(runs),
            refresh_interval=interval,
            followable=self._live.followable,
        )
        self.on_msg(self._on_message)
        if live:
            self.live = True

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, with a summary of what it shows as its ``text/plain``."""
        made = super()._repr_mimebundle_(**kwargs)
        if made is None:
            return None
        data, metadata = made if isinstance(made, tuple) else (made, {})
        return static.with_summary(self, data), metadata

    def _ipython_display_(self) -> None:
        """In IPython (Jupyter's kernel): an image of the chart for viewers that cannot run
        the widget (nbconvert, GitHub, a notebook opened without its kernel), then the
        widget, which hides the image where it renders (`rungroup.widget.static`)."""
        from IPython.display import display

        image = static.fallback(self)
        if image is not None:
            display(image, raw=True)  # type: ignore[no-untyped-call]
        made = self._repr_mimebundle_()
        if made is not None:
            data, metadata = made
            display(data, metadata=metadata, raw=True)  # type: ignore[no-untyped-call]

    def refresh(self) -> bool:
        """Read what changed in the source (a follower's poll) and, if anything did, show it:
        the runs are replaced and `revision` tells the browser to ask for its data again.
        Returns whether anything changed. Live mode calls it every `refresh_interval`."""
        return self._live.poll(self._session.runs, self._show_runs)

    # --- the View

    @property
    def view(self) -> View:
        """The `View` that the traits describe (what the charts show)."""
        return View(**{name: getattr(self, name) for name in VIEW_FIELDS})

    @view.setter
    def view(self, view: View) -> None:
        if not isinstance(view, View):
            raise TypeError(f"view must be a rungroup.View, got {type(view).__name__}")
        self.update(**{name: getattr(view, name) for name in VIEW_FIELDS})

    def update(self, **settings: Any) -> None:
        """Change several settings at once (validated together, one refresh)."""
        _check_names(settings, "unknown setting(s)")
        view = self.view.replace(**{k: v for k, v in settings.items() if k in VIEW_FIELDS})
        check_against_runs(view, self._session.runs, pending_ok=True)
        values = view.to_dict()
        with self.hold_trait_notifications():
            for name, value in settings.items():
                setattr(self, name, values.get(name, value))

    @traitlets.validate(*VIEW_FIELDS)
    def _validate_view_field(self, proposal: Mapping[str, Any]) -> Any:
        name = proposal["trait"].name
        try:
            fields = {n: getattr(self, n) for n in VIEW_FIELDS}
            fields[name] = proposal["value"]
            view = View(**fields)
            if hasattr(self, "_session"):
                check_against_runs(view, self._session.runs, name, pending_ok=True)
        except (TypeError, ValueError) as error:
            raise TraitError(str(error)) from error
        return view.to_dict()[name]

    @traitlets.validate("compare")
    def _validate_compare(self, proposal: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return compare_view.check_settings(proposal["value"])
        except (TypeError, ValueError) as error:
            raise TraitError(str(error)) from error

    @traitlets.validate("panel")
    def _validate_panel(self, proposal: Mapping[str, Any]) -> str:
        try:
            return compare_view.check_panel(proposal["value"])
        except ValueError as error:
            raise TraitError(str(error)) from error

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Changes from the browser: an invalid one is shown in the widget and undone there."""
        try:
            super().set_state(sync_data)
        except TraitError as error:
            # shown until the next valid change (the data reply after the undo keeps it)
            self._show_error(str(error), request_failed=False)
            self.send_state(list(sync_data))
            return
        self._clear_error(request_failed=False)

    def _show_error(self, message: str, *, request_failed: bool) -> None:
        self.error = message
        self._request_error = request_failed

    def _clear_error(self, *, request_failed: bool) -> None:
        """Clear `error` if it came from a failed request (or an invalid browser change)."""
        if self.error and self._request_error == request_failed:
            self.error = ""

    # --- data

    @property
    def runs(self) -> Runs:
        """All the runs the widget was given."""
        return self._session.runs

    @runs.setter
    def runs(self, runs: Runs) -> None:
        self._show_runs((runs if isinstance(runs, Runs) else _load(runs)).collect(), None)

    def _show_runs(self, runs: Runs, appended: pl.DataFrame | None) -> None:
        """Show `runs`; `appended`: the history rows they add to the runs shown until now."""
        self._session.replace_runs(runs, appended)
        choices = info(runs)
        if choices != self.info:
            self.info = choices
        self.revision += 1

    @property
    def filtered_runs(self) -> Runs:
        """The runs that pass the filter box (hidden runs included)."""
        return filter_runs(self._session.runs, self.search)

    @property
    def selected_runs(self) -> list[str]:
        """Ids of the runs that pass the filter and are not hidden: those in the aggregates."""
        hidden = self.view.hidden
        return [run_id for run_id in self.filtered_runs.ids if run_id not in hidden]

    @property
    def aggregated(self) -> pl.DataFrame:
        """Exactly what the charts show (the Aggregate schema, docs/statistics.md).

        On a group page it also holds the group's runs, one series each, marked by the
        ``layer`` column (``"group"`` or ``"run"``).
        """
        return self._frame().aggregated

    @property
    def summary(self) -> pl.DataFrame:
        """The group table: one row per group (`rungroup.summarize` of the shown runs)."""
        frame = self._frame()
        return frame.workspace.summarize(frame.view)

    @property
    def spec(self) -> dict[str, Any]:
        """The Vega-Lite spec the browser renders (its data arrive separately as Arrow)."""
        return self._frame().spec.spec

    @property
    def compared(self) -> pl.DataFrame:
        """What the Compare view shows: `rungroup.compare` of the shown runs (filter box,
        grouping, hidden runs) with the `compare` trait's settings, one row per group."""
        return self._compared().frame

    def export(self, path: str | Path, what: str = "aggregated") -> Path:
        """Write the aggregated frame (``what="aggregated"``), the group table
        (``what="summary"``) or the Compare view's frame (``what="compare"``) to `path`
        (``.csv`` or ``.parquet``), with its recipe: Parquet key-value metadata, or a JSON
        sidecar ``<path>.recipe.json`` for CSV."""
        if what == "compare":
            frame = self.compared
            return export(frame, path, view=recipe_of(frame), extra=self._extra())
        if what not in ("aggregated", "summary"):
            raise ValueError(
                f"what={what!r} is not valid; choose one of: aggregated, summary, compare"
            )
        frame = self.aggregated if what == "aggregated" else self.summary
        return export(frame, path, view=self.view, extra=self._extra())

    def recipe(self, what: str = "aggregated") -> dict[str, Any]:
        """The recipe an export carries: the View, plus the widget's filter and group page
        (``what="compare"``: the comparison's View and settings)."""
        if what == "compare":
            frame = self.compared
            view = recipe_of(frame)
            assert view is not None  # rungroup.compare attaches its recipe
            return recipe_dict(view, {**(recipe_extra(frame) or {}), **self._extra()})
        return recipe_dict(self.view, self._extra())

    def _extra(self) -> dict[str, Any]:
        return {k: v for k, v in (("search", self.search), ("focus", self.focus)) if v}

    def set_hidden(self, run_ids: set[str] | Sequence[str], hide: bool = True) -> None:
        """Hide (or show again) runs: hidden runs leave the aggregates and the charts."""
        current = set(self.view.hidden)
        current = current | set(run_ids) if hide else current - set(run_ids)
        setattr(self, "hidden", sorted(current))  # noqa: B010 (a trait made from View)

    def _frame(self) -> Frame:
        """What the charts show for the current settings (kept by the session)."""
        return self._session.frame(self.view, self.search, self.focus)

    def _table(self) -> Table:
        """The runs table for the current settings (kept by the session)."""
        return self._session.table(
            self._frame(),
            self.search,
            list(self.sort),
            list(self.expanded),
            list(self.table_columns),
        )

    def _compared(self) -> compare_view.Compared:
        """The Compare view for the current settings (kept by the session)."""
        frame = self._frame()
        groups = frame.workspace.grouping(frame.view)
        labels = [str(label) for label in groups.series["series"].to_list()]
        colours = self._session.colours(frame.view)
        return self._session.compares.get(
            frame.runs, frame.view, self.search, dict(self.compare), labels, colours
        )

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
        return messages.answer(self, request)


def _check_names(settings: Mapping[str, Any], what: str) -> None:
    unknown = [name for name in settings if name not in SETTINGS]
    if unknown:
        raise TypeError(
            f"{what} {', '.join(map(repr, unknown))}; valid settings: {', '.join(SETTINGS)}"
        )


def _load(source: Any) -> Runs:
    import rungroup

    return rungroup.load(source)
