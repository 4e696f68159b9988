"""MLflow: SQLite store, file store and a real tracking server; nesting, tags, damage."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from rungroup.runs import LoadWarning
from rungroup.sources.mlflow.reader import is_mlflow, load_mlflow
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


# --- a misbehaving server ----------------------------------------------------------------------

_EXPERIMENTS = {"experiments": [{"experiment_id": "1", "name": "e"}]}
_RUN = {
    "info": {"run_id": "r1", "experiment_id": "1", "status": "FINISHED", "start_time": 1000},
    "data": {"params": [{"key": "lr", "value": "0.1"}], "metrics": [{"key": "loss", "value": 1}]},
}
_POINTS = {"metrics": [{"step": s, "timestamp": 1000 + s, "value": 0.5} for s in range(3)]}


def _serve(answer: Callable[[str], tuple[int, str, bytes, float]]) -> Iterator[str]:
    """A local server whose every answer is `answer(path)`: status, content type, body and
    seconds to wait between the body's bytes (a trickle when not 0)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, kind, body, pause = answer(self.path)
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if pause:
                    for i in range(len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(pause)
                else:
                    self.wfile.write(body)
            except OSError:
                pass  # the client gave up, as it should

        do_GET = do_POST = _reply  # noqa: N815  (http.server's names)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _json(value: object) -> tuple[int, str, bytes, float]:
    return 200, "application/json", json.dumps(value).encode(), 0.0


def _good(path: str) -> tuple[int, str, bytes, float]:
    if "experiments/search" in path:
        return _json(_EXPERIMENTS)
    if "runs/search" in path:
        return _json({"runs": [_RUN]})
    return _json(_POINTS)


def _load_within(url: str, seconds: float, **options: Any) -> Any:
    started = time.monotonic()
    try:
        return load_mlflow(url, **options)
    finally:
        assert time.monotonic() - started < seconds


def test_repeated_page_token_ends_the_listing() -> None:
    def answer(path: str) -> tuple[int, str, bytes, float]:
        if "runs/search" in path:
            return _json({"runs": [_RUN], "next_page_token": "same"})
        return _good(path)

    for url in _serve(answer):
        with pytest.warns(LoadWarning) as caught:
            runs = _load_within(url, 10)
        messages = [str(w.message) for w in caught]
        assert any("runs/search: the server sent page token 'same' again" in m for m in messages)
        assert runs.ids == ["r1"]  # the second page's copy of the run is not read twice


def test_trickled_body_ends_within_the_timeout() -> None:
    def answer(path: str) -> tuple[int, str, bytes, float]:
        status, kind, body, _ = _good(path)
        return status, kind, body, (0.5 if "runs/search" in path else 0.0)

    for url in _serve(answer):
        with pytest.raises(TimeoutError, match=r"runs/search.*timeout=1\.5 s"):
            _load_within(url, 5, timeout=1.5)
        with pytest.raises(TimeoutError, match=r"deadline=1\.0 s"):
            _load_within(url, 5, timeout=30, deadline=1.0)


def test_html_body_names_the_url_and_content_type() -> None:
    page = b"<html><body>Sign in</body></html>"
    for url in _serve(lambda path: (200, "text/html; charset=utf-8", page, 0.0)):
        with pytest.raises(ConnectionError) as caught:
            _load_within(url.replace("http://", "http://alice:secret@"), 10)
        message = str(caught.value)
        assert f"{url}/api/2.0/mlflow/experiments/search" in message
        assert "text/html" in message and "not JSON" in message
        assert "secret" not in message and "alice" not in message


def test_server_error_names_the_url() -> None:
    for url in _serve(lambda path: (500, "text/plain", b"boom", 0.0)):
        with pytest.raises(ConnectionError, match=r"experiments/search: HTTP 500 boom"):
            _load_within(url, 10)


def test_a_failing_history_is_a_warning_and_other_runs_load() -> None:
    def answer(path: str) -> tuple[int, str, bytes, float]:
        if "get-history" in path:
            return 500, "text/plain", b"down", 0.0
        return _good(path)

    for url in _serve(answer):
        with pytest.warns(LoadWarning, match=r"get-history\?run_id=r1&metric_key=loss.*HTTP 500"):
            runs = _load_within(url, 10)
        assert runs.ids == ["r1"] and runs.history.collect().height == 0


def test_missing_keys_are_warnings() -> None:
    run = {
        "info": {"run_id": "r1", "experiment_id": "1", "start_time": 2**62},
        "data": {
            "params": [{"value": "0.1"}, {"key": "seed", "value": "3"}],
            "tags": [{}],
            "metrics": [{"key": "loss", "value": 1.0}],
        },
    }
    points = {"metrics": [{"step": "abc", "timestamp": 1000, "value": 1.0}, {"timestamp": 1000}]}

    def answer(path: str) -> tuple[int, str, bytes, float]:
        if "runs/search" in path:
            return _json({"runs": [run, {"info": {}}, {**_RUN, "info": {**_RUN["info"]}}]})
        if "experiments/search" in path:
            return _json({"experiments": [*_EXPERIMENTS["experiments"], {"name": "no id"}]})
        return _json(points)

    for url in _serve(answer):
        with pytest.warns(LoadWarning) as caught:
            runs = _load_within(url, 10)
    messages = [str(w.message) for w in caught]
    for fragment in (
        "an experiment without an id",
        "a run without a run id",
        "runs/search: run r1: a param without a key",
        "runs/search: run r1: a tag without a key",
        f"start_time {2**62} is not a time",
        "was already read from",
        "point 0: step 'abc' is not an integer",
    ):
        assert any(fragment in m for m in messages), (fragment, messages)
    assert runs.ids == ["r1"]
    assert runs.runs["config.seed"].to_list() == [3] and "config.lr" not in runs.runs.columns
    assert runs.runs["created_at"].to_list() == [None]


def test_truncated_json_and_huge_page(monkeypatch: pytest.MonkeyPatch) -> None:
    from rungroup.sources.mlflow import rest as mlflow_rest

    def truncated(path: str) -> tuple[int, str, bytes, float]:
        return 200, "application/json", json.dumps(_EXPERIMENTS).encode()[:20], 0.0

    for url in _serve(truncated):
        with pytest.raises(ConnectionError, match=r"experiments/search: the answer is not JSON"):
            _load_within(url, 10)
    monkeypatch.setattr(mlflow_rest, "MAX_BODY", 1000)
    huge = _json({"experiments": [{"experiment_id": str(i), "name": "x" * 50} for i in range(99)]})
    for url in _serve(lambda path: huge):
        with pytest.raises(ConnectionError, match=r"experiments/search: .*larger than 1000 bytes"):
            _load_within(url, 10)


def test_a_param_both_number_and_text_warns(mlflow_files: Path, tmp_path: Path) -> None:
    copy = tmp_path / "mlruns"
    shutil.copytree(mlflow_files, copy)
    next(copy.glob("*/*/params/lr")).write_text("high")
    with pytest.warns(LoadWarning, match="column 'config.lr' holds values of different types"):
        runs = load_mlflow(copy)
    assert runs.runs.schema["config.lr"] == pl.String and "high" in runs.runs["config.lr"]
