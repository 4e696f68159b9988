"""CSV and JSON-lines trees (`tree.py`); followed by loading again when a file changed."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rungroup.sources.registry import DATA_SUFFIXES, MLFLOW_SCHEMES, is_template, local_path

if TYPE_CHECKING:
    from rungroup.runs import Runs
    from rungroup.sources.followers import Follower


#: The reader's version, part of the cache's key: raise it when what `load` returns changes.
VERSION = 1


def detect(source: Any) -> bool:
    """A template naming data files, a data file, or a folder holding one."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fspath(source)
    if is_template(text) and not text.startswith(MLFLOW_SCHEMES):
        return text.lower().endswith(DATA_SUFFIXES)
    path = local_path(source)
    if path is None:
        return False
    if not path.is_dir() and path.suffix.lower() in DATA_SUFFIXES:
        return True  # a FIFO or device named so too: the loader warns and skips it
    return path.is_dir() and any(
        p.suffix.lower() in DATA_SUFFIXES for p in path.rglob("*") if p.is_file()
    )


def load(source: Any, **options: Any) -> Runs:
    from rungroup.sources.csv.tree import load_csv

    return load_csv(source, **options)


def follow(source: Any, **options: Any) -> Follower:
    from rungroup.sources.csv.tree import load_csv
    from rungroup.sources.followers import ReloadFollower

    return ReloadFollower(source, load_csv, **options)
