"""`rungroup cache info` and `rungroup cache clear`: the columnar cache of loaded sources
(`rungroup.sources.cache`, docs/sources.md)."""

from __future__ import annotations

import argparse
import time
from typing import Any


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the `cache` command on the main parser's subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "cache",
        help="show or clear the cache of loaded sources",
        description="What rungroup.load() read from files is kept in the cache directory "
        "(RUNGROUP_CACHE_DIR, else the user cache directory) so that a second open is fast.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("info", help="where the cache is, its entries and their size").set_defaults(
        handler=_info
    )
    actions.add_parser("clear", help="remove every entry (sources are never touched)").set_defaults(
        handler=_clear
    )
    return parser


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def _info(arguments: argparse.Namespace) -> int:
    from rungroup.sources.cache import cache_dir, entries

    found = entries()
    total = sum(e.size for e in found)
    print(f"cache directory: {cache_dir()}")
    print(f"entries: {len(found)}, {_size(total)}")
    for entry in found:
        written = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.written))
        print(
            f"  {entry.source!r} ({entry.format}): {entry.runs} runs, {entry.points} points, "
            f"{_size(entry.size)}, written {written}"
        )
    return 0


def _clear(arguments: argparse.Namespace) -> int:
    from rungroup.sources.cache import cache_dir, clear

    count, size = clear()
    print(f"removed {count} entries ({_size(size)}) from {cache_dir()}")
    return 0
