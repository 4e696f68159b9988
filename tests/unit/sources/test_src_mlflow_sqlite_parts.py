"""MLflow SQLite's fast read (ADBC, rowid ranges finished in their threads, large Arrow
batches) returns what the standard library reader returns, bit for bit, and what the table
holds, in its rowid order.

The store is written by the real `mlflow` client: several experiments (one deleted), a
deleted run, runs logged in turns (their rows interleaved in the table), NaN, +-inf and
DBL_MAX values, a step logged after a larger one, keys with a slash and a space.
Also: the reader without `adbc-driver-sqlite`, a database whose pages are damaged (named in
the warning or the error), and a database in WAL mode with rows only in its `-wal` file
while MLflow's connection is still open (read, and the database and its `-wal` file left
as they were).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from bitwise import assert_bit_identical, bits

from rungroup.runs import LoadWarning
from rungroup.sources.mlflow import sqlite
from rungroup.sources.mlflow.reader import load_mlflow

pytestmark = pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s, once a session)

DBL_MAX = sys.float_info.max
VALUES = (math.nan, math.inf, -math.inf, DBL_MAX, -DBL_MAX, 0.0, -0.0, 5e-324, 1.5)
KEYS = ("loss", "acc", "eval/loss", "grad norm")


def _log(client: Any) -> dict[str, str]:
    """Three experiments; returns run name -> run id."""
    from mlflow.entities import Metric, Param

    base = 1_700_000_000_000
    ids: dict[str, str] = {}
    for e in range(3):
        experiment = client.create_experiment(f"exp-{e}")
        for r in range(3):
            name = f"e{e}r{r}"
            ids[name] = client.create_run(experiment, run_name=name).info.run_id
            client.log_batch(ids[name], params=[Param("lr", str(0.1 * (r + 1)))])
        # the runs of an experiment log in turns: their rows interleave in the table
        for step in range(30):
            for r in range(3):
                client.log_batch(
                    ids[f"e{e}r{r}"],
                    metrics=[
                        Metric(key, (step + 1) / (k + 2) + r * 0.01, base + step * 10 + k, step)
                        for k, key in enumerate(KEYS)
                    ],
                )
        special = ids[f"e{e}r0"]
        client.log_batch(
            special, metrics=[Metric("special", v, base + i, i) for i, v in enumerate(VALUES)]
        )
        # a smaller step logged last: the summary stays the value at the largest step
        client.log_batch(special, metrics=[Metric("loss", 99.0, base + 10_000, 3)])
        if e == 2:
            client.delete_experiment(experiment)
    client.delete_run(ids["e0r2"])
    return ids


@pytest.fixture(scope="module")
def store(empty_mlflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("sqlite-parts") / "mlflow.db"
    shutil.copy(empty_mlflow_db, path)
    _log(MlflowClient(tracking_uri=f"sqlite:///{path}"))
    return path


def _calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    calls: list[Any] = []
    real = getattr(sqlite, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(sqlite, name, counted)
    return calls


def _without_adbc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "adbc_driver_sqlite", None)  # import fails


def _table(path: Path, runs: list[str]) -> pl.DataFrame:
    """The metrics table of `runs` in rowid order, read here with sqlite3, values mapped as
    MLflow writes them (is_nan: NaN; +-DBL_MAX: +-inf)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT run_uuid, key, step, value, is_nan FROM metrics ORDER BY rowid"
        ).fetchall()
    kept = set(runs)
    out = []
    for run, key, step, value, is_nan in rows:
        if run in kept:
            if is_nan:
                value = math.nan
            elif abs(value) >= DBL_MAX:
                value = math.copysign(math.inf, value)
            out.append((run, key, step, value))
    return pl.DataFrame(
        out,
        schema={"run_id": pl.String, "metric": pl.String, "step": pl.Int64, "value": pl.Float64},
        orient="row",
    )


@pytest.mark.parametrize("include_deleted", [False, True])
@pytest.mark.parametrize("parts", [1, 4])
def test_ranges_equal_the_standard_library_and_the_table(
    store: Path, monkeypatch: pytest.MonkeyPatch, include_deleted: bool, parts: int
) -> None:
    monkeypatch.setattr(sqlite, "SPLIT_ROWS", 0 if parts > 1 else 10**9)
    monkeypatch.setattr(os, "cpu_count", lambda: parts)
    monkeypatch.setattr(sqlite, "BATCH_ROWS", 100)  # several Arrow batches in each range
    fetches = _calls(monkeypatch, "_fetch")
    general = _calls(monkeypatch, "_sqlite_history")
    fast = load_mlflow(store, include_deleted=include_deleted)
    assert len(fetches) == parts and general == []  # the fast path, in `parts` ranges

    history = fast.history.collect()
    expected_runs = 9 if include_deleted else 5  # exp-2 deleted, and e0r2
    assert fast.runs.height == expected_runs
    assert history["run_id"].n_unique() == expected_runs
    table = _table(store, fast.runs["id"].to_list())
    got = history.select(pl.col("run_id", "metric").cast(pl.String), "step", "value")
    assert bits(got).equals(bits(table))  # every point, in rowid order, bit for bit
    special = got.filter(pl.col("metric") == "special")["value"].to_list()[: len(VALUES)]
    # DBL_MAX is how the store writes inf; SQLite keeps -0.0 as the integer 0
    assert [str(v) for v in special] == [
        "nan", "inf", "-inf", "inf", "-inf", "0.0", "0.0", "5e-324", "1.5",
    ]  # fmt: skip
    assert "grad norm" in history["metric"].cast(pl.String).to_list()

    _without_adbc(monkeypatch)
    slow = load_mlflow(store, include_deleted=include_deleted)
    assert len(general) == 1
    assert_bit_identical(fast, slow)


def test_summaries_are_mlflows_latest_values(store: Path) -> None:
    from mlflow.tracking import MlflowClient

    runs = load_mlflow(store).runs
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    for row in runs.iter_rows(named=True):
        metrics = client.get_run(row["id"]).data.metrics
        for key, value in metrics.items():
            got = row[f"summary.{key}"]
            assert (math.isnan(got) and math.isnan(value)) or got == value, (key, got, value)


def _metrics_pages(path: Path) -> list[int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return [
            page
            for (page,) in connection.execute(
                "SELECT pageno FROM dbstat WHERE name = 'metrics' AND pagetype = 'leaf' "
                "ORDER BY pageno"
            )
        ]


@pytest.mark.parametrize("reader", ["adbc", "sqlite3"])
def test_damaged_metric_pages_are_named_and_the_runs_still_load(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    copy = tmp_path / "mlflow.db"
    shutil.copy(store, copy)
    pages = _metrics_pages(copy)
    assert len(pages) > 4
    page = pages[len(pages) // 2]
    data = bytearray(copy.read_bytes())
    data[(page - 1) * 4096 : page * 4096] = b"\xa5" * 4096  # a leaf page of garbage
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(sqlite, "SPLIT_ROWS", 0)
    if reader == "sqlite3":
        _without_adbc(monkeypatch)
    with pytest.warns(LoadWarning, match=rf"{copy}: table metrics not read \(.*malformed"):
        runs = load_mlflow(copy)
    assert runs.runs.height == 5  # the runs' own tables are intact
    assert runs.history.collect().height == 0


def test_a_damaged_schema_is_an_error_naming_the_file(store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "mlflow.db"
    data = bytearray(store.read_bytes())
    data[100:4096] = b"\x00" * (4096 - 100)  # the schema's page after the header
    copy.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{copy}: not .*MLflow database"):
        load_mlflow(copy)


def _digests(folder: Path) -> dict[str, str]:
    """Each file's digest; the `-shm` index only by name: every WAL reader takes a read
    mark in it (SQLite's protocol between readers and the writer), MLflow's as well."""
    return {
        p.name: "" if p.name.endswith("-shm") else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
    }


@pytest.mark.parametrize("reader", ["adbc", "sqlite3"])
def test_wal_rows_of_a_writer_still_open_are_read_and_nothing_is_written(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    folder = tmp_path / "live"
    folder.mkdir()
    path = folder / "mlflow.db"
    shutil.copy(store, path)
    before = load_mlflow(path).history.collect().height
    writer = sqlite3.connect(path)
    try:
        assert writer.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
        writer.execute("PRAGMA wal_autocheckpoint=0")  # the new rows stay in the -wal file
        run_id = writer.execute(
            "SELECT run_uuid FROM runs WHERE lifecycle_stage = 'active' LIMIT 1"
        ).fetchone()[0]
        writer.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES ('late', ?, ?, ?, ?, 0)",
            [(i / 7, 1_700_000_100_000 + i, run_id, i) for i in range(250)],
        )
        writer.commit()
        assert (folder / "mlflow.db-wal").stat().st_size > 0
        files = _digests(folder)
        monkeypatch.setattr(sqlite, "SPLIT_ROWS", 0)
        if reader == "sqlite3":
            _without_adbc(monkeypatch)
        runs = load_mlflow(path)
        history = runs.history.collect()
        assert history.height == before + 250
        late = history.filter(pl.col("metric") == "late")
        assert late["value"].to_list() == [i / 7 for i in range(250)]
        assert _digests(folder) == files  # the database and its WAL unchanged, no file added
    finally:
        writer.close()


def test_a_driver_without_the_batch_option_keeps_the_fast_path(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = load_mlflow(store)
    monkeypatch.setattr(sqlite, "BATCH_ROWS_OPTION", "adbc.sqlite.query.no_such_option")
    monkeypatch.setattr(sqlite, "SPLIT_ROWS", 0)
    general = _calls(monkeypatch, "_sqlite_history")
    assert_bit_identical(load_mlflow(store), expected)
    assert general == []
