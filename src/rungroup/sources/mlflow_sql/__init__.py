"""MLflow backend stores read in SQL: PostgreSQL today, the history reduced in the database."""

from __future__ import annotations

from rungroup.sources.mlflow_sql.connection import DatabaseError, is_database_uri

__all__ = ["DatabaseError", "is_database_uri", "load_postgres"]


def __getattr__(name: str) -> object:
    if name == "load_postgres":
        from rungroup.sources.mlflow_sql.postgres import load_postgres

        return load_postgres
    raise AttributeError(name)
