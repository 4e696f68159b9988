"""pandas / Polars frames already in memory (`convert.py`); nothing to follow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rungroup.runs import Runs
    from rungroup.sources.followers import Follower


#: Not cached (sources/cache.py): frames are in memory already.
VERSION = None


def detect(source: Any) -> bool:
    """A frame, or a (runs, history) pair of frames (either may be None, not both)."""
    if isinstance(source, tuple) and len(source) == 2:
        return all(s is None or detect(s) for s in source) and any(s is not None for s in source)
    kind = type(source)
    return kind.__name__ in ("DataFrame", "LazyFrame") and kind.__module__.split(".")[0] in (
        "polars",
        "pandas",
    )


def load(source: Any, **options: Any) -> Runs:
    from rungroup.sources.frames.convert import from_frames

    if isinstance(source, tuple):
        return from_frames(*source, **options)
    return from_frames(history_df=source, **options)


def follow(source: Any, **options: Any) -> Follower:
    from rungroup.sources.followers import StaticFollower

    return StaticFollower(load(source, **options))
