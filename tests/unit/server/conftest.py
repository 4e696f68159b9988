"""Session fixtures: a real PostgreSQL 15 and a real `mlflow server` on it
(server_helpers.py), started once and stopped at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from server_helpers import Server, running_mlflow_server, running_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[tuple[str, int]]:
    """(host, port) of a PostgreSQL 15 with the database `mlflow` owned by `rgtest`."""
    with running_postgres() as address:
        yield address


@pytest.fixture(scope="session")
def mlflow_server(postgres: tuple[str, int]) -> Iterator[Server]:
    """`mlflow server --backend-store-uri postgresql+psycopg2://...` on `postgres`."""
    with running_mlflow_server(postgres) as server:
        yield server
