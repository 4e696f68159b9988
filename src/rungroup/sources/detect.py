"""Which loader reads a source: `rungroup.load()` asks `reader_for()` for other trackers' runs.

Checked in this order: a pandas/Polars frame (`from_frames`), an MLflow URI or store
(``sqlite:///``, ``http(s)://``, ``file://``, ``mlflow.db``, ``mlruns/``), a W&B folder or
``.wandb`` file, TensorBoard event files, then CSV / JSON-lines files. A path template
(``"logs/{algo}/seed_{seed}"``) goes to `load_csv` when it ends in a data file name
(``.csv``, ``.tsv``, ``.jsonl``, ``.ndjson``) and to `load_tensorboard` otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rungroup.runs import Runs

__all__ = ["KINDS", "reader_for"]

#: What `rungroup.load()` accepts besides rungroup's own store, for error messages.
KINDS = (
    "an MLflow store (mlflow.db, sqlite:///..., mlruns/, http://...), a TensorBoard log "
    "folder or template, a W&B folder (wandb/), a CSV / JSON-lines file, folder or template, "
    "or a pandas / Polars frame"
)

_DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")


def _frames(source: Any, **options: Any) -> Runs:
    from rungroup.sources.frames import from_frames

    if isinstance(source, tuple):
        return from_frames(*source, **options)
    return from_frames(history_df=source, **options)


def _is_frame(source: Any) -> bool:
    if isinstance(source, tuple) and len(source) == 2:
        return all(s is None or _is_frame(s) for s in source) and any(s is not None for s in source)
    kind = type(source)
    return kind.__name__ in ("DataFrame", "LazyFrame") and kind.__module__.split(".")[0] in (
        "polars",
        "pandas",
    )


def reader_for(source: Any) -> Callable[..., Runs] | None:
    """The loader for `source` (called as ``loader(source, **options)``), or None."""
    if _is_frame(source):
        return _frames
    if not isinstance(source, (str, os.PathLike)):
        return None
    text = os.fspath(source)
    from rungroup.sources.mlflow_store import is_mlflow, load_mlflow

    if text.startswith(("sqlite:///", "http://", "https://", "file://")):
        return load_mlflow
    if "{" in text or "*" in text:
        if text.lower().endswith(_DATA_SUFFIXES):
            from rungroup.sources.csv_tree import load_csv

            return load_csv
        from rungroup.sources.tensorboard_events import load_tensorboard

        return load_tensorboard
    path = Path(text)
    if not path.exists():
        return None
    from rungroup.sources.wandb_offline import is_wandb, load_wandb

    if is_wandb(path):
        return load_wandb
    if is_mlflow(path):
        return load_mlflow
    from rungroup.sources.tensorboard_events import is_tensorboard, load_tensorboard

    if is_tensorboard(path):
        return load_tensorboard
    from rungroup.sources.csv_tree import load_csv

    if not path.is_dir() and path.suffix.lower() in _DATA_SUFFIXES:
        return load_csv  # a FIFO or device named so too: the loader warns and skips it
    if path.is_dir() and any(
        p.suffix.lower() in _DATA_SUFFIXES for p in path.rglob("*") if p.is_file()
    ):
        return load_csv
    return None
