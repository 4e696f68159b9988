"""MLflow runs: the SQLite store, the `mlruns/` file store and a tracking server (REST).

All three are read without the `mlflow` package: SQLite with one query per table (never one
per run or metric, `sqlite.py`), the file store as the text files it is (`filestore.py`), a
server through its REST API with the standard library (`rest.py`). Other database URIs
(postgresql://, mysql://, ...) go through mlflow's own client (`client.py`), which needs
``pip install 'rungroup[mlflow]'``. `records.py` maps what each backend read to `Runs`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rungroup.runs import Runs
from rungroup.sources.mlflow.client import _read_client
from rungroup.sources.mlflow.filestore import _is_file_store, _read_file_store
from rungroup.sources.mlflow.records import _Raw, _to_runs
from rungroup.sources.mlflow.sqlite import _has_mlflow_tables, _read_sqlite, _sqlite_path

__all__ = ["is_mlflow", "load_mlflow"]


def is_mlflow(source: Any) -> bool:
    """True for an MLflow SQLite file or URI, an `mlruns/` folder or an http(s) URI."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fspath(source)
    if text.startswith(("sqlite:///", "http://", "https://", "file://")):
        return True
    path = Path(text)
    try:
        if _sqlite_path(path) is not None:
            return _has_mlflow_tables(_sqlite_path(path))  # type: ignore[arg-type]
        return _is_file_store(path) or (
            (path / "mlruns").is_dir() and _is_file_store(path / "mlruns")
        )
    except OSError:
        return False


def load_mlflow(
    source: str | Path = "mlflow.db",
    *,
    group_tag: str = "group",
    job_type_tag: str = "job_type",
    nested: bool = True,
    include_deleted: bool = False,
    experiments: list[str] | None = None,
    timeout: float = 30.0,
    deadline: float = 3600.0,
    workers: int = 8,
    progress_bar: bool | None = None,
) -> Runs:
    """Load MLflow runs from a SQLite store, an `mlruns/` folder or a tracking URI.

    `source`: ``mlflow.db`` / ``sqlite:///path/mlflow.db`` (MLflow 3's default store, read
    directly), a folder holding ``mlflow.db`` or ``mlruns/``, an ``mlruns/`` folder (the file
    store), ``http(s)://host:port`` (a tracking server, over REST: one request per run and
    metric, `workers` at a time; each request must be answered within `timeout` seconds and
    the whole load within `deadline`), or any other MLflow tracking URI (through mlflow's
    client, ``pip install 'rungroup[mlflow]'``). `experiments` keeps only experiments with
    these names. Deleted runs and experiments are left out unless `include_deleted`.
    """
    text = os.fspath(source)
    reader: Callable[[], _Raw]
    if text.startswith(("http://", "https://")):
        from rungroup.sources.mlflow.rest import read_rest

        reader = lambda: read_rest(text, include_deleted, progress_bar, timeout, workers, deadline)  # noqa: E731
    elif (path := _sqlite_path(text)) is not None:
        if not path.is_file():
            raise FileNotFoundError(f"no such MLflow database: {path}")
        reader = lambda: _read_sqlite(path, include_deleted)  # noqa: E731
    else:
        folder = Path(text[len("file://") :] if text.startswith("file://") else text)
        if folder.is_dir() and not _is_file_store(folder) and _is_file_store(folder / "mlruns"):
            folder = folder / "mlruns"
        if folder.is_dir():
            reader = lambda: _read_file_store(folder, include_deleted, progress_bar)  # noqa: E731
        elif "://" in text:
            reader = lambda: _read_client(text, include_deleted, progress_bar)  # noqa: E731
        else:
            raise FileNotFoundError(f"no MLflow store at {text}")
    raw = reader()
    if experiments is not None:
        wanted = set(experiments)
        raw.experiments = {k: v for k, v in raw.experiments.items() if v in wanted}
        raw.runs = [r for r in raw.runs if r["experiment_id"] in raw.experiments]
    return _to_runs(raw, group_tag, job_type_tag, nested)
