"""`follow(source)`: the follower for any source `rungroup.load` accepts.

A follower's `poll()` returns ``(runs, changed)``: the runs as a fresh ``rungroup.load(source,
**options)`` would return them now, and whether they changed since the last poll (the first
poll always reports a change). Each kind of source has the cheapest follower it allows:

- a rungroup store: `StoreFollower` (history files tailed from the last complete record);
- an MLflow SQLite store: `MlflowFollower` (only new rows);
- a TensorBoard folder, template or file: `TensorBoardFollower` (event files tailed);
- W&B run folders or files: `WandbFollower` (.wandb files tailed);
Each format's package (`registry.py`) says which: its `follow(source, **options)`.

- anything else read from files (CSV / JSON-lines trees, MLflow's `mlruns/` file store): a
  `ReloadFollower` that stats the files and loads again only when some file's
  (mtime, size) changed;
- a tracking server or database URI: a `ReloadFollower` that loads again on every poll and
  reports a change only when the result differs;
- a `Runs` object or frames: a `StaticFollower` (nothing to follow);
- an empty folder: a `PendingFollower` that reports no runs until something is written, then
  picks the follower for what appeared.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from rungroup.runs import Runs
from rungroup.sources import identity
from rungroup.sources.identity import Stamps
from rungroup.sources.registry import format_for

__all__ = [
    "Follower",
    "PendingFollower",
    "ReloadFollower",
    "StaticFollower",
    "follow",
]


class Follower(Protocol):
    """What `follow()` returns."""

    def poll(self) -> tuple[Runs, bool]: ...


class StaticFollower:
    """A source that cannot change (a `Runs` object, frames): loaded once."""

    def __init__(self, runs: Runs) -> None:
        self.runs = runs
        self._polled = False

    def poll(self) -> tuple[Runs, bool]:
        changed = not self._polled
        self._polled = True
        return self.runs, changed


class ReloadFollower:
    """Loads the source again when some file's (mtime, size) changed since the last poll;
    for a source that is not files (a server URI), loads it on every poll and reports a
    change only when the result differs."""

    def __init__(self, source: Any, loader: Callable[..., Runs], **options: Any) -> None:
        self.source = source
        self.loader = loader
        self.options = options
        self.watched = identity.watched(source)
        self._stamps: Stamps | None = None
        self._current: Runs | None = None
        #: how many loads the last poll did (0 when nothing changed)
        self.loads = 0

    def poll(self) -> tuple[Runs, bool]:
        self.loads = 0
        stamps = identity.stamps(self.watched()) if self.watched is not None else None
        if self._current is not None and stamps is not None and stamps == self._stamps:
            return self._current, False
        runs = self.loader(self.source, **self.options)
        self.loads = 1
        # Files that changed while being read are seen as changed again next poll.
        self._stamps = stamps
        previous = self._current
        self._current = runs
        if previous is not None and stamps is None and _equal(previous, runs):
            self._current = previous
            return previous, False
        return runs, True


def _equal(a: Runs, b: Runs) -> bool:
    return a.runs.equals(b.runs) and a.history.collect().equals(b.history.collect())


class PendingFollower:
    """An empty folder: no runs until something is written in it, then the follower for
    whatever appeared (a store, TensorBoard logs, ...)."""

    def __init__(self, path: Path, **options: Any) -> None:
        self.path = path
        self.options = options
        self.follower: Follower | None = None

    def poll(self) -> tuple[Runs, bool]:
        if self.follower is None:
            try:
                empty = not any(self.path.iterdir())
            except OSError:
                empty = True
            if empty:
                return _EMPTY, False
            self.follower = follow(self.path, **self.options)
        return self.follower.poll()

    @property
    def appended(self) -> Any:
        """The `appended` rows of the follower picked, if it reports them."""
        return getattr(self.follower, "appended", None)

    @property
    def appended_to(self) -> Runs | None:
        return getattr(self.follower, "appended_to", None)

    def close(self) -> None:
        close = getattr(self.follower, "close", None)
        if close is not None:
            close()


_EMPTY = Runs()


def follow(source: Any, **options: Any) -> Follower:
    """The follower of `source` (anything `rungroup.load` accepts; the same `options`)."""
    if isinstance(source, Runs):
        if options:
            raise TypeError(f"options {sorted(options)} do not apply to a Runs object")
        return StaticFollower(source)
    if not isinstance(source, (str, os.PathLike)):
        from rungroup.sources import load

        return StaticFollower(load(source, **options))
    found = format_for(source)
    if found is not None:
        return found.follow(source, **options)
    path = Path(source)
    if path.is_dir() and not any(path.iterdir()):
        return PendingFollower(path, **options)
    from rungroup.sources import load

    load(source, **options)  # raises the error `load` gives for this source
    raise AssertionError("unreachable: load() accepted a source no format detects")
