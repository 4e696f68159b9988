"""rungroup's own store (written by `rungroup.store`, docs/store.md): `reader.py` loads it,
`follower.py` tails its history files while runs are written."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rungroup.sources.registry import follower_options, local_path

if TYPE_CHECKING:
    from rungroup.runs import Runs
    from rungroup.sources.followers import Follower


#: Not kept in the columnar cache (sources/cache.py): the store is already read at tens of
#: millions of points a second into a compact history that builds only the columns and metrics
#: a query selects; a cache entry would hold every point again, materialised.
VERSION = None


def detect(source: Any) -> bool:
    from rungroup.sources.store.reader import is_store

    path = local_path(source)
    return path is not None and is_store(path)


def load(source: Any, **options: Any) -> Runs:
    from rungroup.sources.store.reader import load_store

    return load_store(Path(source), **options)


def follow(source: Any, **options: Any) -> Follower:
    from rungroup.sources.store.follower import StoreFollower

    return StoreFollower(Path(source), **follower_options(options))
