"""`Workspace(runs)`: what the engine reuses between calls on one `Runs`, owned by its caller.

The engine's functions are pure; what makes a second call on the same runs cheap lives here,
in an object its caller holds and drops: the groupings (one per group-by setting, of every
run: a view's hidden runs are left out of it by `grouping.without_hidden`, so the runs table,
which lists hidden runs too, and the aggregation share it), the dense path's matrices and
their slices (`dense.Matrices`), the runs' last values, and the threads big blocks are reduced
in (started when first needed, stopped by `close()`, by leaving a ``with`` block, or when the
workspace is collected).

`rungroup.aggregate()` and `rungroup.summarize()` make a throwaway one; the widget's session
keeps one, and in live mode replaces it by `extended(runs, appended)` at every poll, which
carries the matrices and last values over instead of reading the whole history again.
"""

from __future__ import annotations

import os
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import polars as pl

from rungroup.engine import dense, last_values
from rungroup.engine.aggregate import aggregate_grouping
from rungroup.engine.dense_matrix import Prepared
from rungroup.engine.grouping import Grouping, _group_runs, grouping_inputs, without_hidden
from rungroup.engine.provider import BucketSums
from rungroup.engine.recipe import attach_recipe
from rungroup.engine.summarize import summarize_grouping
from rungroup.engine.xaxis import select_metrics
from rungroup.runs import Runs
from rungroup.view import View, resolve_view

#: Groupings kept per workspace (by group-by setting).
GROUPINGS = 8
#: A history provider's answers kept per workspace (each about runs x points x metrics rows),
#: and the matrices made of them (the dense path's): two entries an answer.
PUSHED = 8


def _stop(pools: list[ThreadPoolExecutor]) -> None:
    while pools:
        pools.pop().shutdown(wait=False, cancel_futures=True)


class Workspace:
    """The caches of the engine for one `Runs` (see the module docs). Not shared between
    threads: one owner calls it."""

    def __init__(self, runs: Runs) -> None:
        if not isinstance(runs, Runs):
            raise TypeError(f"Workspace() takes a rungroup Runs, got {type(runs).__name__}")
        self._runs = runs
        #: Groupings of every run, by (group_by, grouping, reverse), with their inputs.
        self._groupings: OrderedDict[tuple[Any, ...], tuple[pl.DataFrame, Grouping]] = OrderedDict()
        self._matrices = dense.Matrices(runs)
        self._last: last_values.LastValues | None = None
        self._finals: dict[str, pl.DataFrame] = {}
        #: a history provider's answers (engine/provider.py), by (runs, metrics, x, points)
        self._pushed: OrderedDict[tuple[Any, ...], BucketSums | Prepared | None] = OrderedDict()
        # a list, so that the finalizer holds the pool and not the workspace
        self._pools: list[ThreadPoolExecutor] = []
        self._finalizer = weakref.finalize(self, _stop, self._pools)

    @property
    def runs(self) -> Runs:
        return self._runs

    # lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the threads and drop every cache (the workspace stays usable)."""
        _stop(self._pools)
        self._groupings.clear()
        self._matrices.clear()
        self._last = None
        self._finals.clear()
        self._pushed.clear()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _pool(self) -> Executor:
        if not self._pools:
            self._pools.append(ThreadPoolExecutor(min(4, os.cpu_count() or 1), "rungroup-dense"))
        return self._pools[0]

    # groupings --------------------------------------------------------------------------------

    def grouping(self, view: View, *, hidden: bool = True) -> Grouping:
        """The series of `view` over the runs (validated). The grouping of every run is made
        once per group-by setting and kept; `hidden=True` leaves `view.hidden` out of it,
        `hidden=False` returns it whole (the runs table lists hidden runs too)."""
        key = (view.group_by, view.grouping, view.reverse)
        everyone = view.replace(hidden=frozenset())
        kept = self._groupings.get(key)
        if kept is None:
            made = _group_runs(self._runs, everyone)
            self._groupings[key] = (grouping_inputs(self._runs, everyone), made)
            while len(self._groupings) > GROUPINGS:
                self._groupings.popitem(last=False)
        else:
            self._groupings.move_to_end(key)
            made = kept[1]
        return without_hidden(made, self._runs, view) if hidden else made

    def _kept_pushed(self) -> OrderedDict[tuple[Any, ...], BucketSums | Prepared | None]:
        while len(self._pushed) > PUSHED:
            self._pushed.popitem(last=False)
        return self._pushed

    # the engine's functions -------------------------------------------------------------------

    def aggregate(
        self, view: View | Mapping[str, Any] | None = None, **fields: Any
    ) -> pl.DataFrame:
        """`rungroup.aggregate(runs, view, **fields)`, reusing what this workspace keeps."""
        resolved = resolve_view(view, **fields)
        select_metrics(self._runs, resolved)  # checked first, as aggregate() always has
        frame = aggregate_grouping(
            self._runs,
            resolved,
            self.grouping(resolved),
            matrices=self._matrices,
            pool=self._pool,
            pushed=self._kept_pushed(),
        )
        return attach_recipe(frame, resolved)

    def aggregate_drawn(self, view: View) -> pl.DataFrame:
        """What a chart of `aggregate(view)` draws: its rows with the key columns, ``series``,
        ``metric``, ``x``, ``n``, ``dropped``, ``line``, ``lower`` and ``upper`` only (the
        same rows and numbers; only the statistics the line and band are made of are
        computed)."""
        select_metrics(self._runs, view)
        return aggregate_grouping(
            self._runs,
            view,
            self.grouping(view),
            drawn_only=True,
            matrices=self._matrices,
            pool=self._pool,
            pushed=self._kept_pushed(),
        )

    def summarize(
        self,
        view: View | Mapping[str, Any] | None = None,
        *,
        reduce: str = "last",
        k: int = 10,
        **fields: Any,
    ) -> pl.DataFrame:
        """`rungroup.summarize(runs, view, reduce=..., k=..., **fields)`, sharing this
        workspace's groupings."""
        resolved = resolve_view(view, **fields)
        select_metrics(self._runs, resolved)
        return summarize_grouping(self._runs, resolved, self.grouping(resolved), reduce=reduce, k=k)

    def final_values(self, *, prefix: str = "") -> pl.DataFrame:
        """Each run's last logged value of each metric (`engine.last_values.final_values`):
        ``id`` and a Float64 column per metric named `prefix` + metric. Kept; in live mode
        made from the previous values and the rows appended since."""
        frame = self._finals.get(prefix)
        if frame is None:
            if self._last is None:
                self._last = last_values.extend(None, self._runs.history)
            frame = last_values.final_values(self._runs, self._last, prefix=prefix)
            self._finals[prefix] = frame
        return frame

    # live mode --------------------------------------------------------------------------------

    def extended(self, runs: Runs, appended: pl.DataFrame) -> Workspace:
        """The workspace of `runs`, whose history is this one's followed by the rows
        `appended` (``run_id``, ``metric``, ``step``, ``value``; a live poll's), whatever runs
        it holds: its matrices and last values are this one's with the appended points written
        in (when first needed), its groupings this one's where the run columns they depend on
        are unchanged. This workspace's threads pass to it; this one keeps its caches."""
        out = Workspace(runs)
        out._matrices = self._matrices.extended(runs, appended)
        if self._last is not None:
            out._last = (
                last_values.extend(self._last, appended.lazy()) if appended.height else self._last
            )
        for key, (inputs, made) in self._groupings.items():
            everyone = View(group_by=key[0], grouping=key[1], reverse=key[2])
            try:
                now = grouping_inputs(runs, everyone)
            except ValueError:  # a column is gone: grouped again when asked for
                continue
            if now.equals(inputs):
                out._groupings[key] = (inputs, made)
        out._pools.extend(self._pools)
        self._pools.clear()
        return out
