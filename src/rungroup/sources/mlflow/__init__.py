"""MLflow: `sqlite.py` (the SQLite store), `filestore.py` (`mlruns/`), `rest.py` (a tracking
server), `client.py` (any other URI, through mlflow's client), `postgres.py` (a backend store in
PostgreSQL, its history left in the database; `database.py` its read-only connection,
`postgres_follower.py` its follower); `records.py` maps what they read to `Runs`, `reader.py`
picks the backend, `follower.py` reads only new rows of a SQLite store."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rungroup.sources.registry import MLFLOW_SCHEMES, follower_options, local_path

if TYPE_CHECKING:
    from rungroup.runs import Runs
    from rungroup.sources.followers import Follower


#: The reader's version, part of the cache's key: raise it when what `load` returns changes.
VERSION = 1


def detect(source: Any) -> bool:
    if isinstance(source, (str, os.PathLike)) and os.fspath(source).startswith(MLFLOW_SCHEMES):
        return True
    from rungroup.sources.mlflow.database import is_database_uri

    if isinstance(source, str) and is_database_uri(source):
        return True
    from rungroup.sources.mlflow.reader import is_mlflow

    path = local_path(source)
    return path is not None and is_mlflow(path)


def load(source: Any, **options: Any) -> Runs:
    from rungroup.sources.mlflow.database import is_database_uri

    if isinstance(source, str) and is_database_uri(source):
        from rungroup.sources.mlflow.postgres import load_postgres

        return load_postgres(source, **options)
    if options.pop("pushdown", False):  # a SQLite store, its history left in the file
        from rungroup.sources.mlflow.sqlite_pushdown import load_sqlite_pushdown

        return load_sqlite_pushdown(source, **options)
    from rungroup.sources.mlflow.reader import load_mlflow

    return load_mlflow(source, **options)


def follow(source: Any, **options: Any) -> Follower:
    """New rows only for a SQLite store or a PostgreSQL backend store; a reload when files
    change otherwise (a server: on every poll)."""
    from rungroup.sources.mlflow.database import is_database_uri

    if isinstance(source, str) and is_database_uri(source):
        from rungroup.sources.mlflow.postgres_follower import PostgresFollower

        return PostgresFollower(source, **follower_options(options))
    from rungroup.sources.mlflow.follower import MlflowFollower, follows

    if follows(source) is not None:
        return MlflowFollower(source, **follower_options(options))
    from rungroup.sources.followers import ReloadFollower
    from rungroup.sources.mlflow.reader import load_mlflow

    return ReloadFollower(source, load_mlflow, **options)
