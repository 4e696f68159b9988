"""MLflow's fast first reads (issue #14) equal the general readers they short-cut.

Stores are written by the real `mlflow` client with NaN, +-inf, duplicate steps and many
metrics. The file store's one-text parse (`_joined`, narrowed down by halves around a bad
file) is compared with the files read one by one (`_metric_file`); the SQLite store's ADBC
read in rowid ranges with the standard library reader. Each test also checks that the fast
path was the one taken, so a fast path that silently fell back would fail here.
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from bitwise import assert_bit_identical

from rungroup.runs import LoadWarning
from rungroup.sources import files
from rungroup.sources.mlflow import filestore, sqlite
from rungroup.sources.mlflow.reader import load_mlflow

#: Special values MLflow must round-trip (the SQL store writes NaN as is_nan, inf as DBL_MAX).
SPECIAL = (math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1.7976931348623157e308)
KEYS = [f"m{i:02d}" for i in range(24)] + ["nested/key"]


def _log(client: Any) -> None:
    from mlflow.entities import Metric, Param

    experiment = client.create_experiment("fast")
    base = 1_700_000_000_000
    for run in range(3):
        run_id = client.create_run(
            experiment, run_name=f"r{run}", tags={"group": f"g{run % 2}"}
        ).info.run_id
        metrics = [
            Metric(key, (step + 1) / (k + 3) + run * 0.1, base + step * 7 + k, step)
            for step in range(40)
            for k, key in enumerate(KEYS)
        ]
        # Special values, and steps logged twice (a resumed run): both points are kept.
        metrics += [Metric("special", v, base + i, i) for i, v in enumerate(SPECIAL)]
        metrics += [Metric("m00", 9.5 + run, base + 999, 3), Metric("m00", 8.5, base + 1000, 3)]
        client.log_batch(run_id, metrics=metrics, params=[Param("lr", str(0.1 * run))])
        client.set_terminated(run_id)


@pytest.fixture(scope="module")
def special_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("fast-files") / "mlruns"
    # MLflow refuses a file store unless told it may
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        _log(MlflowClient(tracking_uri=root.as_uri()))
    yield root


@pytest.fixture(scope="module")
def special_sqlite(empty_mlflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("fast-sqlite") / "mlflow.db"
    shutil.copy(empty_mlflow_db, path)
    _log(MlflowClient(tracking_uri=f"sqlite:///{path}"))
    return path


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[Any]:
    calls: list[Any] = []
    real = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


# --- file store -----------------------------------------------------------------------------


def test_file_store_one_text_parse_equals_file_by_file(
    special_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_by_one = _counting(monkeypatch, filestore, "_metric_file")
    fast = load_mlflow(special_files)
    assert one_by_one == []  # every file went through the one-text parse
    history = fast.history.collect()
    special = history.filter(pl.col("metric") == "special", pl.col("run_id") == fast.runs["id"][0])
    assert [v for v in special["value"]] == pytest.approx(list(SPECIAL), nan_ok=True)
    assert history.filter(pl.col("metric") == "m00", pl.col("step") == 3).height == 3 * 3
    assert history["metric"].n_unique() == len(KEYS) + 1

    monkeypatch.setattr(filestore, "_joined", lambda *_: None)
    assert_bit_identical(fast, load_mlflow(special_files))  # the parallel scan
    assert one_by_one == []

    def no_scan(*_: Any, **__: Any) -> Any:
        raise pl.exceptions.ComputeError("scan refused by the test")

    monkeypatch.setattr(pl, "scan_csv", no_scan)
    slow = load_mlflow(special_files)
    assert len(one_by_one) == 3 * (len(KEYS) + 1)
    assert_bit_identical(fast, slow)


def test_a_malformed_line_is_named_and_only_its_file_is_reread(
    special_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "mlruns"
    shutil.copytree(special_files, copy)
    victims = sorted(copy.glob("*/*/metrics/m07"))
    with victims[1].open("a") as handle:
        handle.write("1700000000000 not-a-number 41\n1700000000001 2.5 42\n")
    one_by_one = _counting(monkeypatch, filestore, "_metric_file")
    with pytest.warns(LoadWarning) as caught:
        runs = load_mlflow(copy)
    messages = [str(w.message) for w in caught]
    assert any(
        "metrics/m07: line 41" in m and "value 'not-a-number' is not a number" in m
        for m in messages
    ), messages
    assert [call[0] for call in one_by_one] == [victims[1]]
    assert len(runs) == 3
    history = runs.history.collect()
    # The bad line is skipped, the good line after it and every other run's points are kept.
    assert history.filter(pl.col("metric") == "m07").height == 3 * 40 + 1
    monkeypatch.setattr(filestore, "_joined", lambda *_: None)
    with pytest.warns(LoadWarning):
        assert_bit_identical(runs, load_mlflow(copy))


def test_bad_files_everywhere_equal_the_general_path(
    special_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "mlruns"
    shutil.copytree(special_files, copy)
    victims = sorted(copy.glob("*/*/metrics/m03")) + sorted(copy.glob("*/*/metrics/m20"))
    for victim in victims:  # old MLflow's 'timestamp value' lines, then a torn line
        victim.write_bytes(b"1700000000000 0.5\n1700000000001 0.25\n17000")
    with pytest.warns(LoadWarning) as caught:
        fast = load_mlflow(copy)
    torn = [str(w.message) for w in caught if "line 3 is not" in str(w.message)]
    assert len(torn) == len(victims)
    steps = fast.history.collect().filter(pl.col("metric") == "m03")["step"]
    assert steps.to_list() == [0, 0] * 3
    monkeypatch.setattr(filestore, "_joined", lambda *_: None)
    with pytest.warns(LoadWarning):
        assert_bit_identical(fast, load_mlflow(copy))


def test_unreadable_and_empty_metric_files(special_files: Path, tmp_path: Path) -> None:
    copy = tmp_path / "mlruns"
    shutil.copytree(special_files, copy)
    empty = sorted(copy.glob("*/*/metrics/m01"))[0]
    empty.write_bytes(b"")
    no_newline = sorted(copy.glob("*/*/metrics/m02"))[0]
    no_newline.write_bytes(no_newline.read_bytes().rstrip(b"\n"))
    (sorted(copy.glob("*/*/metrics"))[2] / "fifo").mkdir()  # a folder: key "fifo" has no file
    runs = load_mlflow(copy)
    history = runs.history.collect().with_columns(pl.col("run_id", "metric").cast(pl.String))
    first = runs.runs["id"].cast(pl.String)[0]
    per_key = history.filter(pl.col("run_id") == first).group_by("metric").len()
    counts = dict(zip(per_key["metric"], per_key["len"], strict=True))
    assert "m01" not in counts and counts["m02"] == 40


def test_key_folder_listing_equals_walk(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("b", "a", "Z", "a.b"):
        (plain / name).write_text("1 2 3\n")
    mixed = tmp_path / "mixed"
    (mixed / "sub").mkdir(parents=True)
    (mixed / "sub" / "key").write_text("x")
    (mixed / "top").write_text("y")
    (mixed / "link").symlink_to(mixed / "top")
    for folder in (plain, mixed):
        walked = {
            files.shown(p.relative_to(folder).as_posix()): p
            for p in files.walk(folder, lambda _: True)
        }
        assert filestore._key_files(folder) == walked
        assert list(filestore._key_files(folder)) == list(walked)
    assert filestore._key_files(tmp_path / "missing") == {}
    assert filestore._key_files(plain / "a") == {}


# --- SQLite ---------------------------------------------------------------------------------


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s, once a session)
@pytest.mark.parametrize("split", [True, False])
def test_sqlite_adbc_ranges_equal_the_standard_library(
    special_sqlite: Path, monkeypatch: pytest.MonkeyPatch, split: bool
) -> None:
    if split:  # the fixture is small: split it as a large table would be
        monkeypatch.setattr(sqlite, "SPLIT_ROWS", 0)
    fetches = _counting(monkeypatch, sqlite, "_fetch")
    general = _counting(monkeypatch, sqlite, "_sqlite_history")
    fast = load_mlflow(special_sqlite)
    assert general == []  # ADBC read it
    assert len(fetches) == (min(4, os.cpu_count() or 1) if split else 1)
    history = fast.history.collect()
    special = history.filter(pl.col("metric") == "special", pl.col("run_id") == fast.runs["id"][0])
    # The SQL store writes inf as DBL_MAX, so DBL_MAX itself reads back as inf.
    expected = [math.inf if v == sys.float_info.max else v for v in SPECIAL]
    assert [v for v in special["value"]] == pytest.approx(expected, nan_ok=True)
    assert history.filter(pl.col("metric") == "m00", pl.col("step") == 3).height == 3 * 3

    monkeypatch.setitem(sys.modules, "adbc_driver_sqlite", None)
    slow = load_mlflow(special_sqlite)
    assert len(general) == 1
    assert_bit_identical(fast, slow)


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s, once a session)
def test_sqlite_bad_rows_are_named_and_ranges_still_used(
    special_sqlite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "mlflow.db"
    shutil.copy(special_sqlite, copy)
    with sqlite3.connect(copy) as connection:
        run_id, key = connection.execute("SELECT run_uuid, key FROM metrics LIMIT 1").fetchone()
        connection.execute(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?, 'oops', 1700000000000, ?, 77, 0)",
            (key, run_id),
        )
        (rowid,) = connection.execute("SELECT max(rowid) FROM metrics").fetchone()
    monkeypatch.setattr(sqlite, "SPLIT_ROWS", 0)
    general = _counting(monkeypatch, sqlite, "_sqlite_history")
    with pytest.warns(LoadWarning, match=rf"table metrics, row {rowid}: value 'oops'"):
        fast = load_mlflow(copy)
    assert general == []  # the filtered query, still through ADBC in rowid ranges
    monkeypatch.setitem(sys.modules, "adbc_driver_sqlite", None)
    with pytest.warns(LoadWarning, match=rf"table metrics, row {rowid}"):
        slow = load_mlflow(copy)
    assert_bit_identical(fast, slow)
    assert fast.history.collect().height == load_mlflow(special_sqlite).history.collect().height


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s, once a session)
def test_sqlite_a_rowid_range_without_rows_keeps_the_fast_path(
    special_sqlite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "mlflow.db"
    shutil.copy(special_sqlite, copy)
    with sqlite3.connect(copy) as connection:
        run_id, key, high = connection.execute(
            "SELECT run_uuid, key, (SELECT max(rowid) FROM metrics) FROM metrics LIMIT 1"
        ).fetchone()
        # a point far past the others: the ranges between them hold no rows
        connection.execute(
            "INSERT INTO metrics (rowid, key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?, ?, 0.5, 1700000000000, ?, 5000, 0)",
            (high * 100, key, run_id),
        )
    monkeypatch.setattr(sqlite, "SPLIT_ROWS", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    fetches = _counting(monkeypatch, sqlite, "_fetch")
    general = _counting(monkeypatch, sqlite, "_sqlite_history")
    fast = load_mlflow(copy)
    assert len(fetches) == 4 and general == []
    assert fast.history.collect().filter(pl.col("step") == 5000).height == 1
    monkeypatch.setitem(sys.modules, "adbc_driver_sqlite", None)
    assert_bit_identical(fast, load_mlflow(copy))
