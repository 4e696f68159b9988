"""Every source of runs ends in the same `Runs`; `load()` picks the format (`registry.py`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rungroup.runs import Runs
from rungroup.sources.cache import load_cached
from rungroup.sources.registry import KINDS, format_for
from rungroup.sources.store.reader import load_store

__all__ = ["load", "load_store"]

_ACCEPTED = f"a rungroup store folder (a root, a project or one run), {KINDS}, or a Runs object"


def load(source: Any, *, cache: bool = True, **options: Any) -> Runs:
    """Load runs from `source`, detecting its kind.

    `options` go to the reader that handles the source (e.g. `project=` for a store). What
    is read from files is kept in the columnar cache (`sources/cache.py`, docs/sources.md) and
    a later load of unchanged files reads it from there; `cache=False` reads the source only.
    """
    if isinstance(source, Runs):
        if options:
            raise TypeError(f"options {sorted(options)} do not apply to a Runs object")
        return source
    if (found := format_for(source)) is not None:
        # a push-down load keeps its history in the source: nothing to cache
        if not cache or found.VERSION is None or options.get("pushdown"):
            return found.load(source, **options)
        name = found.__name__.rsplit(".", 1)[-1]
        return load_cached(name, found.VERSION, found.load, source, options)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir() and not any(path.iterdir()):
            return Runs()  # a store that has no runs yet
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {source}; expected {_ACCEPTED}")
        raise ValueError(f"{source} is not a source rungroup can read; expected {_ACCEPTED}")
    raise TypeError(f"cannot load runs from a {type(source).__name__}; expected {_ACCEPTED}")
