"""A database source is read-only and keeps its credentials to itself."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
from server_helpers import PASSWORD, Server, log_runs

import rungroup as rg
from rungroup.export import export
from rungroup.sources.mlflow.database import Database, DatabaseError


@pytest.fixture(scope="module")
def server(mlflow_server: Server) -> Server:
    log_runs(
        mlflow_server.tracking_uri,
        "secrets",
        [
            {
                "params": {"lr": 0.1},
                "tags": {"group": "a"},
                "metrics": {"loss": [(s, 1_700_000_000_000 + s, 1.0 / (s + 1)) for s in range(30)]},
            }
        ],
    )
    return mlflow_server


def test_a_password_in_the_uri_appears_in_no_output(
    server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = rg.load(server.uri("postgresql+psycopg"), experiments=["secrets"])
        seen += [repr(runs), repr(runs.provider), str(runs.runs), str(runs.runs.to_dicts())]
        frame = rg.aggregate(runs, metrics="loss", group_by="group", align="bucket", points=10)
        written = export(frame, tmp_path / "out.parquet")
        seen += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
        seen.append(str(written))
        # an error: a statement timeout of 1 ms on a slow query
        slow = Database.from_uri(server.uri(), timeout=0.001)
        with pytest.raises(DatabaseError) as raised, slow.connect() as reader:
            reader.select("SELECT pg_sleep(1)")
        seen += [str(raised.value), repr(raised.value), repr(slow)]
        assert raised.value.__cause__ is None and raised.value.__context__ is not None
        # a refused connection: wrong password given in the URI
        wrong = server.uri().replace(PASSWORD, PASSWORD + "x")
        with pytest.raises(DatabaseError) as refused:
            rg.load(wrong)
        seen += [str(refused.value), repr(refused.value)]
    seen += [str(w.message) for w in caught]
    output = capsys.readouterr()
    seen += [output.out, output.err, caplog.text]
    assert "timeout" in str(raised.value) or "cancel" in str(raised.value)
    assert server.host in str(refused.value) and "'mlflow'" in str(refused.value)
    for text in seen:
        assert PASSWORD not in text


def test_pgpassword_is_honoured_as_libpq_does(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DatabaseError, match="password"):
        rg.load(server.uri(password=False))
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert len(rg.load(server.uri(password=False), experiments=["secrets"])) == 1


def test_nothing_can_be_written_through_the_connection(server: Server) -> None:
    database = Database.from_uri(server.uri())
    with database.connect() as reader:
        settings = reader.select(
            "SELECT current_setting('transaction_read_only') AS ro, "
            "current_setting('transaction_isolation') AS iso, "
            "current_setting('statement_timeout') AS timeout"
        ).to_pylist()
        assert settings == [{"ro": "on", "iso": "repeatable read", "timeout": "1min"}]
        with pytest.raises(ValueError, match="only SELECT"):
            reader.select("DELETE FROM runs")
        # even a SELECT that would write is refused by the read-only transaction
        with pytest.raises(DatabaseError, match="read-only"):
            reader.select("SELECT 1 FROM (SELECT setval('experiments_experiment_id_seq', 99)) s")
    assert len(rg.load(server.uri(), experiments=["secrets"])) == 1


def test_a_database_that_does_not_answer_is_an_error_naming_host_and_database() -> None:
    from server_helpers import free_port

    uri = f"postgresql://someone:{PASSWORD}@127.0.0.1:{free_port()}/teamdb"
    with pytest.raises(DatabaseError) as raised:
        rg.load(uri, progress_bar=False)
    text = str(raised.value)
    assert "127.0.0.1" in text and "'teamdb'" in text and "connecting" in text
    assert PASSWORD not in text and PASSWORD not in repr(raised.value)
    assert raised.value.__cause__ is None
