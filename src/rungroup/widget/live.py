"""Live mode: the follower that reads what changed in the source, and the timer that polls it.

The timer runs on the kernel's own asyncio loop (`loop.call_later`): a poll runs on the main
thread between cell executions, never beside them, and no thread touches the widget. The loop
holds only a weak reference to the widget's tick, so a forgotten widget is not kept alive.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anywidget
import polars as pl
import traitlets
from traitlets import Bool, Float, Int, TraitError

from rungroup.runs import Runs
from rungroup.widget.messages import describe

if TYPE_CHECKING:
    from rungroup.sources.followers import Follower

#: Default and smallest refresh interval of live mode, in seconds.
REFRESH_INTERVAL = 2.0
MIN_REFRESH_INTERVAL = 0.2

NOT_FOLLOWABLE = (
    "live=True needs a source to follow (a store folder, an MLflow store, TensorBoard logs, "
    "W&B run folders, ...): Explorer(path, live=True); a Runs object or frames cannot change"
)


def followable(source: Any) -> bool:
    """Whether `source` can change (a path): a `Runs` object or frames cannot."""
    return isinstance(source, (str, os.PathLike))


def check_interval(value: Any) -> float:
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


def _call(ref: weakref.WeakMethod[Callable[[], None]]) -> None:
    tick = ref()
    if tick is not None:
        tick()


class Live:
    """The follower of one widget's source, its timer and what the polls cost."""

    def __init__(self, source: Any) -> None:
        #: What live mode follows (None for a `Runs` object or frames: nothing to follow).
        self.source: Any = source if followable(source) else None
        self.follower: Follower | None = None
        self.timer: asyncio.TimerHandle | None = None
        #: Whether the last poll failed (the next good one clears the error it showed).
        self.failed = False
        #: Polls made, and what the last one cost (for tests and benchmarks).
        self.polls = 0
        self.last_poll: dict[str, float] = {}

    @property
    def followable(self) -> bool:
        return self.source is not None

    def _follower(self) -> Follower:
        if self.source is None:
            raise ValueError(NOT_FOLLOWABLE)
        if self.follower is None:
            from rungroup.sources.followers import follow

            self.follower = follow(self.source)
        return self.follower

    def first(self) -> Runs:
        """The runs as the follower reads them first (a widget started in live mode)."""
        runs, _ = self._follower().poll()
        return runs

    def poll(self, shown: Runs, show: Callable[[Runs, pl.DataFrame | None], None]) -> bool:
        """Read what changed since the last poll; if anything did, `show(runs, appended)`,
        where `appended` are the history rows the new runs add to `shown` when the follower
        says so (the store's does), else None. Returns whether anything changed."""
        started = time.perf_counter()
        follower = self._follower()
        runs, changed = follower.poll()
        polled = time.perf_counter()
        self.polls += 1
        if changed:
            appended = getattr(follower, "appended", None)
            extends = appended is not None and getattr(follower, "appended_to", None) is shown
            show(runs, appended if extends else None)
        self.last_poll = {
            "poll_ms": 1000 * (polled - started),
            "update_ms": 1000 * (time.perf_counter() - polled),
            "changed": float(changed),
        }
        return changed

    def schedule(self, interval: float, tick: Callable[[], None]) -> None:
        """Call `tick` (a bound method, held weakly) in `interval` seconds."""
        self.cancel()
        self.timer = _event_loop().call_later(interval, _call, weakref.WeakMethod(tick))

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None


class LiveWidget(anywidget.AnyWidget):
    """The live-mode part of the Explorer: its traits and the tick of its timer. The widget
    gives it `_live` (its `Live`), `refresh` (one poll, shown) and the error display."""

    #: Follow the source while runs are written: poll it every `refresh_interval` seconds.
    live = Bool(False).tag(sync=True)
    #: Seconds between two polls of the source in live mode (at least 0.2).
    refresh_interval = Float(REFRESH_INTERVAL).tag(sync=True)
    #: Bumped whenever the runs change (a live poll): the browser asks for its data again.
    revision = Int(0).tag(sync=True)
    #: Whether the widget has a source to follow (False for a `Runs` object): the Live toggle.
    followable = Bool(False).tag(sync=True)

    _live: Live

    def refresh(self) -> bool:
        raise NotImplementedError

    def _show_error(self, message: str, *, request_failed: bool) -> None:
        raise NotImplementedError

    def _clear_error(self, *, request_failed: bool) -> None:
        raise NotImplementedError

    @traitlets.validate("live")
    def _validate_live(self, proposal: Mapping[str, Any]) -> bool:
        value = bool(proposal["value"])
        if value and not self._live.followable:
            raise TraitError(NOT_FOLLOWABLE)
        return value

    @traitlets.validate("refresh_interval")
    def _validate_refresh_interval(self, proposal: Mapping[str, Any]) -> float:
        try:
            return check_interval(proposal["value"])
        except ValueError as error:
            raise TraitError(str(error)) from error

    @traitlets.observe("live", "refresh_interval")
    def _on_live(self, change: Mapping[str, Any]) -> None:
        self._live.cancel()
        if self.live:
            self._live.schedule(self.refresh_interval, self._tick)

    def _tick(self) -> None:
        """One live poll (what the timer calls), then the next one scheduled."""
        self._live.timer = None
        if not self.live or self.comm is None:
            return
        try:
            self.refresh()
        except Exception as error:  # shown in the widget; live mode goes on
            self._show_error(describe(error), request_failed=True)
            self._live.failed = True
        else:
            if self._live.failed:
                self._clear_error(request_failed=True)  # the source is readable again
            self._live.failed = False
        finally:
            if self.live and self.comm is not None:
                self._live.schedule(self.refresh_interval, self._tick)

    @property
    def polls(self) -> int:
        """Polls made by live mode (or `refresh`)."""
        return self._live.polls

    @property
    def last_poll(self) -> dict[str, float]:
        """What the last poll cost: ``poll_ms`` (the follower), ``update_ms`` (the rest)."""
        return self._live.last_poll

    def close(self) -> None:
        """Close the widget; live polling stops."""
        if hasattr(self, "_live"):  # not when __init__ failed (__del__ closes)
            self._live.cancel()
        super().close()
