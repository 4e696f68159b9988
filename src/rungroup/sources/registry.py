"""The formats `rungroup.load()` and `follow()` read, in the order they are tried.

Each format is a package under `sources/` exposing ``detect(source) -> bool``,
``load(source, **options) -> Runs`` and ``follow(source, **options) -> Follower``; its
``__init__`` imports nothing heavy, so asking which format a source is stays cheap.

Order: a pandas/Polars frame, rungroup's own store, a W&B folder or ``.wandb`` file, an MLflow
URI or store (``sqlite:///``, ``http(s)://``, ``file://``, ``mlflow.db``, ``mlruns/``),
TensorBoard event files, then CSV / JSON-lines files. A URI of those schemes is MLflow's
whatever a folder of that name holds; a path template (``"logs/{algo}/seed_{seed}"``) is CSV
when it ends in a data file name (``.csv``, ``.tsv``, ``.jsonl``, ``.ndjson``) and TensorBoard
otherwise; every other format needs an existing path.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from rungroup.runs import Runs

if TYPE_CHECKING:
    from rungroup.sources.followers import Follower

__all__ = [
    "FORMATS",
    "KINDS",
    "Format",
    "follower_options",
    "format_for",
    "local_path",
    "reader_for",
]

#: What `rungroup.load()` accepts besides rungroup's own store, for error messages.
KINDS = (
    "an MLflow store (mlflow.db, sqlite:///..., mlruns/, http://..., postgresql://...), "
    "a TensorBoard log folder or template, a W&B folder (wandb/), a CSV / JSON-lines file, "
    "folder or template, or a pandas / Polars frame"
)

#: The format packages under `sources/`, in the order `format_for` asks them.
FORMATS = ("frames", "store", "wandb", "mlflow", "tensorboard", "csv")

#: URI schemes read by MLflow's backends, whatever a local folder of that name holds.
MLFLOW_SCHEMES = ("sqlite:///", "http://", "https://", "file://")
DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")
#: Options of the bulk readers that do not apply to a follower (it reads a little at a time).
BULK_ONLY = ("progress", "progress_bar", "workers", "timeout")


class Format(Protocol):
    """What each package under `sources/` exposes."""

    __name__: str
    #: raised when what `load` returns changes (part of the cache's key); None: not cached
    VERSION: int | None

    def detect(self, source: Any) -> bool: ...

    def load(self, source: Any, **options: Any) -> Runs: ...

    def follow(self, source: Any, **options: Any) -> Follower: ...


def is_template(text: str) -> bool:
    """A path template or glob (``"logs/{algo}/seed_*"``), matched by the loaders."""
    return "{" in text or "*" in text


def local_path(source: Any) -> Path | None:
    """`source` as an existing file or folder; None for frames, URIs, templates and paths
    that do not exist (those are claimed by the formats that read them, or by none)."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    text = os.fspath(source)
    if text.startswith(MLFLOW_SCHEMES) or is_template(text):
        return None
    path = Path(text)
    return path if path.exists() else None


def follower_options(options: dict[str, Any]) -> dict[str, Any]:
    """`options` without those only the bulk readers take (`BULK_ONLY`)."""
    return {k: v for k, v in options.items() if k not in BULK_ONLY}


def formats() -> list[Format]:
    return [cast("Format", importlib.import_module(f"rungroup.sources.{n}")) for n in FORMATS]


def format_for(source: Any) -> Format | None:
    """The first format in `FORMATS` that detects `source`, or None."""
    for candidate in formats():
        if candidate.detect(source):
            return candidate
    return None


def reader_for(source: Any) -> Callable[..., Runs] | None:
    """The loader for `source` (called as ``loader(source, **options)``), or None."""
    found = format_for(source)
    return None if found is None else found.load
