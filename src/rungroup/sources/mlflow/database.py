"""A read-only connection to an MLflow backend store in PostgreSQL, and its safe name.

The URI's password (or PGPASSWORD, ~/.pgpass, PGSERVICE: libpq reads them itself) is handed
to the driver and nowhere else: the name shown in `Runs.runs["source"]`, warnings and errors
is ``postgresql://user@host:port/database``, and every driver message is scrubbed of the
password before it is shown. Every transaction is read-only and every statement has a time
limit (libpq's ``options``: ``default_transaction_read_only``, ``statement_timeout``), so
nothing rungroup sends can change the database or hold it for long; the SELECTs of one
connection share one repeatable-read snapshot.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rungroup._extras import require

#: The spellings of a PostgreSQL URI (MLflow's `--backend-store-uri` ones included).
SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")


class DatabaseError(RuntimeError):
    """A statement failed or the connection was lost; names the database, never a password."""


def is_database_uri(text: str) -> bool:
    return "://" in text and text.split("://", 1)[0].lower() in SCHEMES


@dataclass(frozen=True)
class Database:
    """Where an MLflow backend store is: `name` is safe to show, `_dsn` is not (repr hides it)."""

    name: str
    host: str
    database: str
    _dsn: str = field(repr=False)
    _secret: str | None = field(repr=False)
    timeout_ms: int = 60_000

    @classmethod
    def from_uri(cls, uri: str, timeout: float = 60.0) -> Database:
        parts = urllib.parse.urlsplit(uri)
        if parts.scheme.lower() not in SCHEMES:
            raise ValueError(f"not a PostgreSQL URI (valid schemes: {', '.join(SCHEMES)})")
        host = parts.hostname or "localhost"
        database = parts.path.lstrip("/") or (parts.username or "")
        user = f"{urllib.parse.unquote(parts.username)}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        name = f"postgresql://{user}{host}{port}/{database}"
        secret = urllib.parse.unquote(parts.password) if parts.password else None
        query = urllib.parse.parse_qsl(parts.query)
        # one snapshot per connection: the tables a load or a poll reads agree with each other
        options = (
            "-c default_transaction_read_only=on "
            "-c default_transaction_isolation=repeatable\\ read "
            f"-c statement_timeout={int(timeout * 1000)}"
        )
        query = [(k, v) for k, v in query if k != "options"] + [("options", options)]
        encoded = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        dsn = urllib.parse.urlunsplit(("postgresql", parts.netloc, parts.path, encoded, ""))
        return cls(name, host, database, dsn, secret, int(timeout * 1000))

    def scrub(self, text: str) -> str:
        """`text` without the password (raw or URL-quoted) and without the full DSN."""
        text = text.replace(self._dsn, self.name)
        if self._secret:
            for secret in {self._secret, urllib.parse.quote(self._secret, safe="")}:
                text = text.replace(secret, "***")
        return text

    def error(self, what: str, error: BaseException) -> DatabaseError:
        return DatabaseError(
            f"MLflow database {self.database!r} on host {self.host} ({self.name}): {what} "
            f"failed: {self.scrub(str(error)).strip()}"
        )

    @contextmanager
    def connect(self) -> Iterator[Reader]:
        """A read-only connection (`Reader`), closed at the end; errors are `DatabaseError`s."""
        dbapi = require(
            "adbc_driver_postgresql.dbapi", "postgres", "Reading an MLflow PostgreSQL database"
        )
        try:
            connection = dbapi.connect(self._dsn)
        except Exception as error:
            raise self.error("connecting", error) from None
        try:
            yield Reader(self, connection)
        finally:
            # a connection already lost: nothing to release
            with contextlib.suppress(Exception):
                connection.rollback()  # ends the read-only transaction: nothing to keep
            with contextlib.suppress(Exception):
                connection.close()


class Reader:
    """One connection's SELECTs, each returning Arrow; values are always bound parameters."""

    def __init__(self, database: Database, connection: Any) -> None:
        self._database = database
        self._connection = connection

    def select(self, query: str, parameters: tuple[Any, ...] = ()) -> Any:
        """The rows of one SELECT as a `pyarrow.Table`."""
        if not query.lstrip().upper().startswith(("SELECT", "WITH")):
            raise ValueError("only SELECT statements are sent to an MLflow database")
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(query, parameters or None)
                table = cursor.fetch_arrow_table()
        except Exception as error:
            raise self._database.error("a query", error) from None
        return table

    def tables(self) -> set[str]:
        found = self.select(
            "SELECT table_name::text AS name FROM information_schema.tables "
            "WHERE table_schema = current_schema()"
        )
        return {str(n) for n in found.column("name").to_pylist()}
