"""MLflow: SQLite store, file store and a real tracking server; nesting, tags, damage."""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from rungroup.runs import LoadWarning
from rungroup.sources.mlflow_store import is_mlflow, load_mlflow
from rungroup.sources.runrecords import MissingExtraError


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in folder.rglob("*")}


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s)
def test_sqlite_is_read_in_place_without_writing(mlflow_sqlite: Path) -> None:
    before = _snapshot(mlflow_sqlite.parent)
    assert is_mlflow(mlflow_sqlite) and is_mlflow(mlflow_sqlite.parent)
    assert len(load_mlflow(mlflow_sqlite.parent)) == 6
    assert len(load_mlflow(f"sqlite:///{mlflow_sqlite}")) == 6
    assert _snapshot(mlflow_sqlite.parent) == before


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s)
def test_standard_library_reader_equals_adbc(
    mlflow_sqlite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adbc_driver_sqlite  # noqa: F401  (the `mlflow` extra, installed by `make test`)

    fast = load_mlflow(mlflow_sqlite)
    monkeypatch.setitem(sys.modules, "adbc_driver_sqlite", None)
    slow = load_mlflow(mlflow_sqlite)
    assert slow.runs.equals(fast.runs)
    assert slow.history.collect().equals(fast.history.collect())


@pytest.mark.slow
def test_tracking_server_over_rest_equals_sqlite(mlflow_server: str, mlflow_sqlite: Path) -> None:
    direct = load_mlflow(mlflow_sqlite)
    served = load_mlflow(mlflow_server)
    columns = [c for c in direct.runs.columns if c != "source"]
    assert served.runs.sort("id").select(columns).equals(direct.runs.sort("id").select(columns))
    key = ["run_id", "metric", "step", "timestamp"]
    a = direct.history.collect().with_columns(pl.col("run_id", "metric").cast(pl.String))
    b = served.history.collect().with_columns(pl.col("run_id", "metric").cast(pl.String))
    assert b.sort(key).equals(a.sort(key))


def _client(store: str) -> object:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store)


@pytest.fixture(params=["sqlite", "files"])
def store(request: pytest.FixtureRequest, tmp_path: Path, empty_mlflow_db: Path) -> Iterator[str]:
    if request.param == "sqlite":
        shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
        yield f"sqlite:///{tmp_path / 'mlflow.db'}"
        return
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield (tmp_path / "mlruns").as_uri()
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


def _location(store: str) -> str:
    return store.removeprefix("file://") if store.startswith("file://") else store


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s)
def test_nested_runs_group_under_parent_and_tags_map(store: str) -> None:
    from mlflow.entities import Metric

    client = _client(store)
    exp = client.create_experiment("sweep")  # type: ignore[attr-defined]
    parent = client.create_run(exp, run_name="sweep-1")  # type: ignore[attr-defined]
    pid = parent.info.run_id
    children = []
    for i in range(3):
        child = client.create_run(  # type: ignore[attr-defined]
            exp, run_name=f"trial-{i}", tags={"mlflow.parentRunId": pid, "stage": "fit"}
        )
        children.append(child.info.run_id)
        client.log_param(child.info.run_id, "width", str(2**i))  # type: ignore[attr-defined]
        client.log_batch(  # type: ignore[attr-defined]
            child.info.run_id,
            metrics=[
                Metric("loss", math.nan, 1, 0),
                Metric("loss", math.inf, 2, 1),
                Metric("loss", -math.inf, 3, 2),
                Metric("loss", 0.5, 4, 3),
            ],
        )
    client.set_tag(children[0], "team", "vision")  # type: ignore[attr-defined]
    client.set_tag(children[0], "grp", "custom")  # type: ignore[attr-defined]
    client.set_terminated(children[1], status="FAILED")  # type: ignore[attr-defined]
    client.set_terminated(children[2], status="KILLED")  # type: ignore[attr-defined]
    deleted = client.create_run(exp, run_name="gone")  # type: ignore[attr-defined]
    client.delete_run(deleted.info.run_id)  # type: ignore[attr-defined]

    runs = load_mlflow(_location(store))
    table = runs.runs.sort("name")
    assert table["name"].to_list() == ["sweep-1", "trial-0", "trial-1", "trial-2"]
    assert table["group"].to_list() == [None, "sweep-1", "sweep-1", "sweep-1"]
    assert table["state"].to_list() == ["running", "running", "failed", "crashed"]
    assert table["config.width"].to_list() == [None, 1, 2, 4]
    assert table["project"].unique().to_list() == ["sweep"]
    assert table["tags"].to_list()[1] == ["grp=custom", "stage=fit", "team=vision"]
    values = runs.history.collect().filter(pl.col("run_id") == children[0]).sort("step")
    assert values["value"][0] != values["value"][0]  # NaN kept
    assert values["value"].to_list()[1:] == [math.inf, -math.inf, 0.5]
    assert table["summary.loss"].to_list()[1:] == [0.5, 0.5, 0.5]

    renamed = load_mlflow(_location(store), group_tag="grp", nested=False).runs.sort("name")
    assert renamed["group"].to_list() == [None, "custom", None, None]
    assert len(load_mlflow(_location(store), include_deleted=True)) == 5
    assert len(load_mlflow(_location(store), experiments=["Default"])) == 0


def test_damaged_metric_file_is_a_warning(mlflow_files: Path, tmp_path: Path) -> None:
    copy = tmp_path / "mlruns"
    shutil.copytree(mlflow_files, copy)
    victim = next(copy.glob("*/*/metrics/loss"))
    with victim.open("a") as handle:
        handle.write("garbage line\n")
    (next(copy.glob("*/*/meta.yaml")).parent.parent / "broken").mkdir()
    (next(copy.glob("*/broken")) / "meta.yaml").write_text("run_id: [unclosed\n")
    with pytest.warns(LoadWarning) as caught:
        runs = load_mlflow(copy)
    messages = [str(w.message) for w in caught]
    assert any("metrics/loss: line 21" in m for m in messages), messages
    assert any("broken/meta.yaml: run not read" in m for m in messages), messages
    assert len(runs) == 6


def test_not_a_database_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "mlflow.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(ValueError, match="MLflow database"):
        load_mlflow(bad)


def test_other_database_uris_need_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(MissingExtraError, match=r"rungroup\[mlflow\]"):
        load_mlflow("postgresql://user@127.0.0.1/mlflow")
