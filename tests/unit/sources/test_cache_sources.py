"""Every source loads the same with the columnar cache cold, warm and after its files grew.

Each source is written with its real client (rungroup, mlflow, tensorboardX, wandb offline,
a CSV writer), then changed the ways a project's logs change: points appended to a run, a new
run, a run deleted. After each change a load through the cache equals a load without it, and
a second load comes from the cache alone (the reader is not called).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from follow_helpers import sorted_history
from polars.testing import assert_frame_equal

import rungroup as rg
from rungroup.sources import cache
from rungroup.sources.registry import format_for

Step = Callable[[], None]


def assert_identical(a: rg.Runs, b: rg.Runs) -> None:
    """Same frames, same column order, same dtypes; the same runs table row for row, the same
    history points (a load resumed from the cache has each poll's points after the earlier
    ones, a full read has them in its decoder's order: `sorted_history`)."""
    assert_frame_equal(a.runs, b.runs)
    assert_frame_equal(sorted_history(a), sorted_history(b))
    assert a.history.collect_schema() == b.history.collect_schema()


def check(source: Any, monkeypatch: pytest.MonkeyPatch, *, cached: bool = True) -> rg.Runs:
    """A load through the cache (cold or after a change) and a second one both equal a
    cache-less load; the second reads only the cache when nothing is running."""
    fresh = rg.load(source, cache=False)
    first = rg.load(source)
    assert_identical(first, fresh)
    if cached:
        found = format_for(source)
        assert found is not None
        with monkeypatch.context() as patch:
            patch.setattr(found, "load", _not_called)
            second = rg.load(source)
    else:
        second = rg.load(source)
    assert_identical(second, fresh)
    return fresh


def _not_called(*args: Any, **kwargs: Any) -> rg.Runs:
    raise AssertionError("the source was read although the cache holds it")


def run_stages(
    source: Any, stages: list[Step], monkeypatch: pytest.MonkeyPatch, *, cached: bool = True
) -> None:
    counts = []
    for stage in stages:
        stage()
        counts.append(len(check(source, monkeypatch, cached=cached)))
    assert len(set(counts)) > 1  # the stages did change what loads
    if not cached:
        assert cache.entries() == []
        return
    assert [e.source for e in cache.entries()] == [
        str(Path(source).absolute()) if "://" not in str(source) else str(source)
    ]  # one entry per source, rewritten in place


# --- rungroup's store -----------------------------------------------------------------------


def test_store_is_read_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's own reader is the fast path (its `VERSION` is None): loads are the same
    with and without `cache`, and no entry is written."""
    root = tmp_path / "runs"

    def run(name: str, steps: int) -> rg.Run:
        live = rg.init(dir=root, project="p", name=name, id=name, config={"lr": 0.1})
        for step in range(steps):
            live.log({"loss": 1.0 / (step + 1), "acc": step * 0.01}, step=step)
        return live

    open_run: list[rg.Run] = []

    def first() -> None:
        run("a", 50).finish()
        run("b", 30).finish()

    def append() -> None:
        live = run("c", 20)
        open_run.append(live)
        # running: loads equal a cache-less load but nothing is cached (its state depends
        # on the clock); then more points are appended and the run finishes
        check(root, monkeypatch, cached=False)
        for step in range(20, 40):
            live.log({"loss": 0.5, "acc": 0.3}, step=step)
        live.finish()

    def new() -> None:
        run("d", 10).finish()

    def delete() -> None:
        shutil.rmtree(root / "p" / "a")

    run_stages(root, [first, append, new, delete], monkeypatch, cached=False)


# --- MLflow ---------------------------------------------------------------------------------


def _mlflow_stages(client: Any, experiment: str) -> list[Step]:
    from mlflow.entities import Metric

    base = 1_700_000_000_000
    ids: list[str] = []

    def log(run_id: str, start: int, stop: int) -> None:
        metrics = [
            Metric(k, step * 0.1 + len(k), base + step, step)
            for step in range(start, stop)
            for k in ("loss", "acc")
        ]
        client.log_batch(run_id, metrics=metrics)

    def new(name: str) -> Step:
        def step() -> None:
            run_id = client.create_run(experiment, run_name=name, tags={"group": name}).info.run_id
            ids.append(run_id)
            client.log_param(run_id, "lr", "0.1")
            log(run_id, 0, 20)
            client.set_terminated(run_id)

        return step

    def append() -> None:
        log(ids[0], 20, 40)

    def delete() -> None:
        client.delete_run(ids[1])

    return [new("a"), new("b"), append, new("c"), delete]


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s, once a session)
def test_mlflow_sqlite(
    tmp_path: Path, empty_mlflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    path = tmp_path / "mlflow.db"
    shutil.copy(empty_mlflow_db, path)
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    stages = _mlflow_stages(client, client.create_experiment("cached"))
    run_stages(path, stages, monkeypatch)


@pytest.mark.slow
def test_mlflow_file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    root = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=root.as_uri())
    stages = _mlflow_stages(client, client.create_experiment("cached"))
    run_stages(root, stages, monkeypatch)


# --- TensorBoard ----------------------------------------------------------------------------


def test_tensorboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorboardX import SummaryWriter

    root = tmp_path / "logs"

    def write(run: str, start: int, stop: int) -> Step:
        def step() -> None:
            writer = SummaryWriter(str(root / run))
            for i in range(start, stop):
                writer.add_scalar("loss", 1.0 / (i + 1), i)
                writer.add_scalar("acc", i * 0.01, i)
            writer.close()

        return step

    def delete() -> None:
        shutil.rmtree(root / "a")

    stages = [write("a", 0, 30), write("b", 0, 20), write("a", 30, 60), write("c", 0, 5), delete]
    run_stages(root, stages, monkeypatch)


# --- W&B offline ----------------------------------------------------------------------------


def _wandb_run(root: Path, name: str, steps: int) -> None:
    script = f"""
import wandb
run = wandb.init(project="cached", dir={str(root)!r}, name={name!r}, config={{"lr": 0.1}})
for step in range({steps}):
    run.log({{"loss": 1.0 / (step + 1), "acc": step * 0.01}}, step=step)
run.finish()
"""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)


@pytest.mark.slow  # each wandb run starts wandb's service (seconds)
def test_wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "project"
    root.mkdir()
    folder = root / "wandb"

    def new(name: str, steps: int) -> Step:
        return lambda: _wandb_run(root, name, steps)

    def delete() -> None:
        first = sorted(folder.glob("offline-run-*"))[0]
        shutil.rmtree(first)

    # A W&B run cannot be appended to once finished: growth is new runs and a deletion.
    run_stages(folder, [new("a", 30), new("b", 20), delete], monkeypatch)


# --- CSV ------------------------------------------------------------------------------------


def test_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "csv"

    def write(run: str, start: int, stop: int) -> Step:
        def step() -> None:
            path = root / run / "metrics.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not path.exists()
            with path.open("a", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["step", "loss", "acc"])
                if fresh:
                    writer.writeheader()
                    (path.parent / "hparams.yaml").write_text(json.dumps({"run": run}))
                for i in range(start, stop):
                    writer.writerow({"step": i, "loss": 1.0 / (i + 1), "acc": i * 0.01})

        return step

    def delete() -> None:
        shutil.rmtree(root / "b")

    stages = [write("a", 0, 30), write("b", 0, 10), write("a", 30, 50), write("c", 0, 5), delete]
    run_stages(root, stages, monkeypatch)
