"""One widget's working state: its runs and every cache made from them.

An `Explorer` owns one `Session`; nothing here is shared between widgets, and everything
dies with its widget. What is kept, and when it is dropped (docs/architecture.md, "Caches"):

- frames: the last `FRAME_CACHE` computed frames (what the charts show for one view, filter
  and group page), so that going back to a setting shown a moment ago is instant;
- the table built last (its rows, for paging), keyed by the table's settings;
- the specs by chart shape (building one with Altair costs milliseconds; most changes keep
  the shape);
- the engine's `Workspace` of its runs (groupings, matrices, each run's last values: the
  table's metric cells), extended from what a live poll appended instead of read again from
  the whole history; and one of the runs the last search shows.

`replace_runs` drops everything but the specs (they depend on no run).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import polars as pl

from rungroup.chart import RAW_FIELD, WidgetSpec, has_thin, time_span_class, widget_spec
from rungroup.engine.workspace import Workspace
from rungroup.palette import group_colours
from rungroup.runs import Runs
from rungroup.view import View
from rungroup.widget import legend as legends
from rungroup.widget.compare import CompareCache
from rungroup.widget.payload import chart_payload
from rungroup.widget.table import METRIC, Table, build_table, filter_runs, membership

#: Computed frames kept per widget (each is what the charts of one setting show).
FRAME_CACHE = 4
#: Specs kept per widget, by shape (a few, for going back and forth between settings).
SPEC_CACHE = 32


@dataclass
class Frame:
    """Everything the charts show for one (view, search, focus): computed once, then kept."""

    runs: Runs
    view: View
    #: The chart's rows: the Aggregate without the statistics its line and band are not
    #: made of (`aggregate_drawn`), or a group page's whole frame (`group_page_frame`).
    drawn: pl.DataFrame
    spec: WidgetSpec
    chart_ipc: bytes
    focus_label: str | None
    #: The legend the browser draws (`rungroup.widget.legend.legend`).
    legend: dict[str, Any]
    #: Milliseconds spent grouping, in the engine, building the spec and the Arrow payload.
    timings: dict[str, float]
    #: The engine's caches for `runs` (the session's, or one for the searched runs).
    workspace: Workspace
    _aggregated: pl.DataFrame | None = None
    _membership: pl.DataFrame | None = None

    @property
    def membership(self) -> pl.DataFrame:
        """Which runs are in which series (`table.membership`): for the table, computed
        after the chart has been sent."""
        if self._membership is None:
            self._membership = membership(self.runs, self.view, self.workspace)
        return self._membership

    @property
    def aggregated(self) -> pl.DataFrame:
        """The Aggregate with every statistic, computed when first asked for (a repaint
        needs only `drawn`, whose rows and numbers are its own)."""
        if self._aggregated is None:
            self._aggregated = self.workspace.aggregate(self.view)
        return self._aggregated


def group_page_frame(group_runs: Runs, view: View, label: str) -> pl.DataFrame:
    """What a group page shows: the group's line and band (``layer="group"``) and each of its
    runs (``layer="run"``, run label in ``run``, ``series`` = the group, for its colour)."""
    with Workspace(group_runs) as workspace:  # both read the same matrices
        group = workspace.aggregate(view).with_columns(
            pl.lit("group").alias("layer"), pl.lit(None, dtype=pl.String).alias("run")
        )
        single = workspace.aggregate(view.replace(grouping=False))
    single = single.with_columns(
        pl.col("series").cast(pl.String).alias("run"),
        pl.lit(label).alias("series"),
        pl.lit("run").alias("layer"),
    )
    group = group.with_columns(pl.col("series").cast(pl.String))
    return pl.concat([group, single], how="diagonal_relaxed")


def _with_raw(drawn: pl.DataFrame, unsmoothed: pl.DataFrame) -> pl.DataFrame:
    """`drawn` with ``raw``: the unsmoothed line at each of its points (drawn faintly behind
    the smoothed one)."""
    raw = unsmoothed.select(
        pl.col("series").cast(pl.String),
        pl.col("metric").cast(pl.String),
        "x",
        pl.col("line").alias(RAW_FIELD),
    )
    keyed = drawn.with_columns(pl.col("series").cast(pl.String), pl.col("metric").cast(pl.String))
    return keyed.join(raw, on=["series", "metric", "x"], how="left", maintain_order="left")


class Session:
    """The runs a widget shows and its caches (see the module docs)."""

    def __init__(self, runs: Runs) -> None:
        self._runs = runs
        self._frames: OrderedDict[tuple[Any, ...], Frame] = OrderedDict()
        self._table: tuple[tuple[Any, ...], Table] | None = None
        self._specs: OrderedDict[tuple[Any, ...], WidgetSpec] = OrderedDict()
        #: The engine's caches for `runs`, and for the runs of the last search.
        self._workspace = Workspace(runs)
        self._searched: tuple[str, Workspace] | None = None
        #: The Compare view's last comparisons.
        self.compares = CompareCache()
        #: Each grouping's series colours, by (group_by, grouping, reverse).
        self._colours: dict[tuple[Any, ...], dict[str, str]] = {}

    @property
    def runs(self) -> Runs:
        return self._runs

    def replace_runs(self, runs: Runs, appended: pl.DataFrame | None = None) -> None:
        """Show `runs`; `appended`: the history rows they add to the runs shown until now
        (a live poll), from which the engine's matrices and the last values are extended."""
        if appended is not None:
            self._workspace = self._workspace.extended(runs, appended)
        else:
            self._workspace.close()
            self._workspace = Workspace(runs)
        self._runs = runs
        if self._searched is not None:
            self._searched[1].close()
            self._searched = None
        self._frames.clear()
        self._table = None
        self.compares.clear()
        self._colours.clear()

    def colours(self, view: View) -> dict[str, str]:
        """Every series' colour under `view`'s grouping, from all the runs (hidden and
        filtered ones included), so that hiding or filtering recolours nothing."""
        key = (view.group_by, view.grouping, view.reverse)
        colours = self._colours.get(key)
        if colours is None:
            colours = group_colours(self._runs, view)
            self._colours[key] = colours
        return colours

    def frame(self, view: View, search: str, focus: str) -> Frame:
        key = (view, search, focus)
        frame = self._frames.get(key)
        if frame is not None:
            self._frames.move_to_end(key)
            return frame
        frame = self._compute_frame(view, search, focus)
        self._frames[key] = frame
        while len(self._frames) > FRAME_CACHE:
            self._frames.popitem(last=False)
        return frame

    def finals(self) -> pl.DataFrame:
        """Each run's last logged value of each metric: ``id`` and ``m:<metric>`` columns."""
        return self._workspace.final_values(prefix=METRIC)

    def table(
        self,
        frame: Frame,
        search: str,
        sort: list[str],
        expanded: list[str],
        columns: list[str],
    ) -> Table:
        """The runs table for `frame` (kept until a table setting or the runs change)."""
        key = (frame.view, search, frame.focus_label, tuple(sort), tuple(expanded), tuple(columns))
        if self._table is not None and self._table[0] == key:
            return self._table[1]
        table = build_table(
            frame.runs,
            frame.view,
            frame.membership,
            self.finals(),
            focus=frame.focus_label,
            sort=sort,
            expanded=set(expanded),
            columns=columns,
        )
        self._table = (key, table)
        return table

    def spec(self, drawn: pl.DataFrame, view: View, *, group_page: bool) -> WidgetSpec:
        """The spec for `drawn`, reused across views of the same shape: it depends on the
        metrics drawn, the x type and the settings that titles and marks show, not on which
        runs form which series (the colour order travels as data). So one spec serves views
        that differ only in `group_by`, `reverse` and `hidden`, and every group page."""
        key = (
            tuple(drawn["metric"].unique(maintain_order=True).to_list()),
            drawn.schema["x"],
            time_span_class(drawn),
            RAW_FIELD in drawn.columns,
            has_thin(drawn),
            drawn.height == 0,
            view.replace(group_by=(), reverse=False, hidden=frozenset()),
            group_page,
        )
        spec = self._specs.get(key)
        if spec is None:
            spec = widget_spec(drawn, view, group_page=group_page)
            self._specs[key] = spec
            while len(self._specs) > SPEC_CACHE:
                self._specs.popitem(last=False)
        return spec

    def _workspace_of(self, search: str) -> Workspace:
        """The workspace of the runs `search` shows: the session's, or the last search's."""
        shown = filter_runs(self._runs, search)
        if shown is self._runs:
            return self._workspace
        if self._searched is None or self._searched[0] != search:
            if self._searched is not None:
                self._searched[1].close()
            self._searched = (search, Workspace(shown))
        return self._searched[1]

    @staticmethod
    def _legend(
        workspace: Workspace,
        view: View,
        drawn: pl.DataFrame,
        colours: dict[str, str],
        focus_label: str | None,
    ) -> dict[str, Any]:
        visible = workspace.grouping(view)
        everyone = workspace.grouping(view, hidden=False) if view.hidden else visible
        if focus_label is None:
            order = drawn["series"].cast(pl.String).unique(maintain_order=True).to_list()
            return legends.legend(visible, everyone, view, colours, order, drawn)
        made = legends.legend(visible, everyone, view, colours, [focus_label], drawn)
        runs = drawn.filter(pl.col("layer") == "run").unique("run", maintain_order=True)
        made["entries"] += [
            {"series": run, "label": run, "colour": colour, "n": 1, "total": 1, "run": True}
            for run, colour in runs.select("run", "rg_colour").iter_rows()
        ]
        return made

    def _compute_frame(self, view: View, search: str, focus: str) -> Frame:
        started = time.perf_counter()
        workspace = self._workspace_of(search)
        shown = workspace.runs
        members = None
        focus_label: str | None = None
        if focus and view.grouping:
            members = membership(shown, view, workspace)
            if members.filter(pl.col("series") == focus).height:
                focus_label = focus
        grouped = time.perf_counter()
        if focus_label is not None and members is not None:
            ids = set(members.filter(pl.col("series") == focus_label)["id"].to_list())
            page_runs = shown.select_ids(
                [i for i in shown.ids if i in ids and i not in view.hidden]
            )
            drawn = group_page_frame(page_runs, view, focus_label)
        else:
            # the shown runs, not the visible ones: view.hidden leaves the hidden ones out,
            # and the same Runs object every time lets the engine reuse its matrices
            drawn = workspace.aggregate_drawn(view)
        if view.smoothing != "none" and focus_label is None:
            drawn = _with_raw(drawn, workspace.aggregate_drawn(view.replace(smoothing="none")))
        colours = self.colours(view)
        drawn = legends.styled(drawn, colours, group_page=focus_label is not None)
        legend = self._legend(workspace, view, drawn, colours, focus_label)
        aggregated_at = time.perf_counter()
        spec = self.spec(drawn, view, group_page=focus_label is not None)
        charted = time.perf_counter()
        chart_ipc = chart_payload(drawn, spec.fields)
        done = time.perf_counter()
        return Frame(
            runs=shown,
            view=view,
            drawn=drawn,
            spec=spec,
            chart_ipc=chart_ipc,
            focus_label=focus_label,
            legend=legend,
            timings={
                "groups_ms": 1000 * (grouped - started),
                "aggregate_ms": 1000 * (aggregated_at - grouped),
                "chart_ms": 1000 * (charted - aggregated_at),
                "payload_ms": 1000 * (done - charted),
            },
            workspace=workspace,
            _aggregated=drawn if focus_label is not None else None,
            _membership=members,
        )
