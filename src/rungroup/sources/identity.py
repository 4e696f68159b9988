"""What a source's files are now: the identity of every file a file source reads.

`watched(source)` lists the files or folders a source is read from, `stamps(paths)` the
(mtime in ns, size, inode) of every file at or below them. Two equal stamps mean the load
would read the same bytes: the `ReloadFollower` reloads only when they differ, and the
columnar cache (`cache.py`) trusts an entry only while they are equal.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rungroup.sources.runrecords import Template

__all__ = ["Stamps", "stamps", "watched"]

#: path -> (mtime in ns, size, inode)
Stamps = dict[str, tuple[int, int, int]]


def _stamp(status: os.stat_result) -> tuple[int, int, int]:
    return (status.st_mtime_ns, status.st_size, status.st_ino)


def stamps(paths: list[Path]) -> Stamps:
    """(mtime in ns, size, inode) of every file at or below `paths` (hidden entries included).

    Each folder is listed once, however many links lead to it (a symlink loop ends there);
    what cannot be listed or is not a file is left to the load, which warns about it."""
    found: Stamps = {}
    pending = list(paths)
    listed: set[tuple[int, int]] = set()
    while pending:
        path = pending.pop()
        try:
            status = path.stat()
            if stat.S_ISREG(status.st_mode):
                found[str(path)] = _stamp(status)
                continue
            if not stat.S_ISDIR(status.st_mode) or (status.st_dev, status.st_ino) in listed:
                continue
            listed.add((status.st_dev, status.st_ino))
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=True):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=True):
                    found[entry.path] = _stamp(entry.stat(follow_symlinks=True))
            except OSError:
                continue
    return found


def watched(source: Any) -> Callable[[], list[Path]] | None:
    """What lists the files or folders whose changes change `source` (None: not files, a
    URI). A template's matches are listed again on every call (new runs match it)."""
    text = os.fspath(source)
    if text.startswith("file://"):
        return lambda: [Path(text[len("file://") :])]
    if text.startswith("sqlite:///"):
        path = Path(text[len("sqlite:///") :])
        return lambda: [path, path.with_name(path.name + "-wal")]
    if "://" in text:
        return None
    if "{" in text or "*" in text:
        return Template.parse(text).paths
    return lambda: [Path(text)]
