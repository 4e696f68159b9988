"""The store loaded out of core (`load(..., out_of_core=True)`): the same runs and the same
aggregates as the in-memory load, per-run bucket sums reused by a regrouping, one run's
points held at a time."""

from __future__ import annotations

import gc
import math
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import rungroup as rg
from rungroup.engine import Workspace
from rungroup.sources.store import outofcore
from rungroup.view import BANDS, LINES


def _store(root: Path) -> Path:
    """Eight runs by rungroup's own tracking: regular ones (every metric at every step), one
    logging its metrics at different steps, one with NaN and inf values, one without history,
    one that stopped early."""
    rng = np.random.default_rng(3)
    for index in range(8):
        run = rg.init(
            project="p", config={"lr": [0.1, 0.01][index % 2], "seed": index // 2}, dir=root
        )
        steps = 40 if index != 5 else 17
        if index == 6:
            run.finish()
            continue
        for step in range(0, steps * 3, 3):
            loss = float(np.exp(-step / 50) + rng.normal(0, 0.05))
            if index == 3:  # irregular: acc only every other row, loss twice at some steps
                row = {"loss": loss} if step % 2 else {"loss": loss, "acc": 1 - loss}
                run.log(row, step=step)
                if step % 9 == 0:
                    run.log({"loss": loss / 2}, step=step)
                continue
            acc = 1 - loss if not (index == 4 and step in (9, 30)) else math.nan
            if index == 4 and step == 60:
                acc = math.inf
            run.log({"loss": loss, "acc": acc}, step=step)
        run.finish()
    return root


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return _store(tmp_path / "store")


def _close(expected: pl.DataFrame, got: pl.DataFrame) -> None:
    assert expected.columns == got.columns
    assert expected.height == got.height > 0
    for name in expected.columns:
        a, b = expected[name], got[name]
        if a.dtype.is_float():
            assert (a.is_null() == b.is_null()).all(), name
            x, y = a.drop_nulls().to_numpy(), b.drop_nulls().to_numpy()
            assert np.array_equal(np.isnan(x), np.isnan(y)), name
            finite = ~np.isnan(x)
            np.testing.assert_allclose(y[finite], x[finite], rtol=1e-12, atol=1e-12, err_msg=name)
        else:
            assert a.equals(b), name


def test_runs_and_history_equal_the_in_memory_load(store_root: Path) -> None:
    memory = rg.load(store_root, cache=False)
    disk = rg.load(store_root, out_of_core=True)
    assert disk.runs.equals(memory.runs)
    assert disk.metrics == memory.metrics == ["acc", "loss"]
    order = ["run_id", "metric", "step", "time", "value"]

    def rows(runs: rg.Runs) -> pl.DataFrame:
        frame = runs.history.collect().with_columns(pl.col("run_id", "metric").cast(pl.String))
        return frame.sort(order, maintain_order=True)

    assert rows(disk).equals(rows(memory))
    one = disk.history.filter(pl.col("metric") == "acc").select("value").collect()
    assert one.height == memory.history.filter(pl.col("metric") == "acc").collect().height


@pytest.mark.parametrize("x", ["step", "time"])
def test_every_line_and_band_equals_the_in_memory_engine(store_root: Path, x: str) -> None:
    memory = rg.load(store_root, cache=False)
    disk = rg.load(store_root, out_of_core=True)
    assert disk.provider is not None
    for line in LINES:
        for band in BANDS:
            view = rg.View(
                group_by=["config.lr"],
                metrics=["loss", "acc"],
                line=line,
                band=band,
                x=x,
                points=25,
                align="bucket",
            )
            _close(rg.aggregate(memory, view), rg.aggregate(disk, view))


def test_a_view_the_provider_cannot_push_down_reads_the_history(store_root: Path) -> None:
    memory = rg.load(store_root, cache=False)
    disk = rg.load(store_root, out_of_core=True)
    view = rg.View(group_by=["config.lr"], metrics=["loss"], align="exact", points=500)
    _close(rg.aggregate(memory, view), rg.aggregate(disk, view))


def test_a_regrouping_reuses_the_per_run_series(store_root: Path) -> None:
    disk = rg.load(store_root, out_of_core=True)
    provider = disk.provider
    assert isinstance(provider, outofcore.OutOfCoreHistory)
    fields: dict[str, Any] = dict(metrics=["loss"], align="bucket", points=20)
    with Workspace(disk) as workspace:
        workspace.aggregate(rg.View(group_by=["config.lr"], **fields))
        read = provider.reads
        assert read == 8  # each run read once
        for group_by in (["config.seed"], ["config.lr", "config.seed"], []):
            workspace.aggregate(rg.View(group_by=group_by, line="median", **fields))
        assert provider.reads == read
        workspace.aggregate(rg.View(group_by=["config.lr"], **{**fields, "metrics": ["acc"]}))
        assert provider.reads == 2 * read  # another metric: read again


def test_the_stream_holds_one_run_at_a_time(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By construction: when a run's points are read, no array of the run before is alive."""
    disk = rg.load(store_root, out_of_core=True)
    reader = outofcore.OutOfCoreHistory._run_points
    alive: list[weakref.ref[np.ndarray]] = []
    calls = []

    def spy(self: Any, *args: Any) -> Any:
        gc.collect()  # only reference cycles would need it; there are none to find
        calls.append(sum(ref() is not None for ref in alive))
        alive.clear()
        found = reader(self, *args)
        alive.extend(weakref.ref(array) for block in found for array in block[1:])
        return found

    monkeypatch.setattr(outofcore.OutOfCoreHistory, "_run_points", spy)
    view = rg.View(group_by=["config.lr"], metrics=["loss", "acc"], align="bucket", points=9)
    assert rg.aggregate(disk, view).height
    assert len(calls) == 8 and calls == [0] * 8


def test_a_second_load_reads_the_column_cache_and_a_changed_file_rebuilds_it(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rg.load(store_root, out_of_core=True)
    built: list[int] = []
    writer_add = outofcore._Writer.add

    def counting(self: Any, *args: Any) -> None:
        built.append(1)
        writer_add(self, *args)

    monkeypatch.setattr(outofcore._Writer, "add", counting)
    again = rg.load(store_root, out_of_core=True)
    monkeypatch.chdir(store_root.parent)  # the same store named by a relative path
    rg.load(store_root.name, out_of_core=True)
    assert not built
    run = rg.init(project="p", config={"lr": 0.5, "seed": 9}, dir=store_root)
    run.log({"loss": 7.0, "acc": 0.25})
    run.finish()
    grown = rg.load(store_root, out_of_core=True)
    assert len(built) == 9
    assert len(grown) == len(again) + 1
    view = rg.View(group_by=["config.lr"], metrics=["loss"], align="bucket", points=10)
    _close(rg.aggregate(rg.load(store_root, cache=False), view), rg.aggregate(grown, view))


def test_the_explorer_does_not_collect_an_out_of_core_history(store_root: Path) -> None:
    disk = rg.load(store_root, out_of_core=True)
    provider = disk.provider
    assert isinstance(provider, outofcore.OutOfCoreHistory)
    explorer = rg.Explorer(disk, group_by="config.lr", metrics=["loss"], align="bucket")
    assert provider.reads == 0
    reply, buffers = explorer.handle({"kind": "data", "id": 1})
    assert reply["ok"] and buffers
    explorer.group_by = ["config.seed"]
    reply, _ = explorer.handle({"kind": "data", "id": 2})
    assert reply["ok"] and provider.reads == 8


def _generation(cache: Path) -> Path:
    entry = next((cache / "outofcore").iterdir())
    return entry / (entry / "current").read_text().strip()


@pytest.mark.parametrize("damage", ["truncated", "garbage index"])
def test_a_damaged_column_cache_is_rebuilt_never_read(
    store_root: Path, _isolated_cache: Path, damage: str
) -> None:
    rg.load(store_root, out_of_core=True)
    generation = _generation(_isolated_cache)
    if damage == "truncated":
        values = generation / "values.f64"
        values.write_bytes(values.read_bytes()[:-8])
    else:
        index = generation / "index.npz"
        index.write_bytes(b"\0" * index.stat().st_size)
    with pytest.warns(rg.LoadWarning, match="column cache damaged"):
        again = rg.load(store_root, out_of_core=True)
    assert _generation(_isolated_cache) != generation
    view = rg.View(group_by=["config.lr"], metrics=["loss", "acc"], align="bucket", points=10)
    _close(rg.aggregate(rg.load(store_root, cache=False), view), rg.aggregate(again, view))


def test_a_cache_folder_that_cannot_be_written_is_a_clear_error(
    store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("RUNGROUP_CACHE_DIR", str(blocked))
    with pytest.raises(OSError, match="RUNGROUP_CACHE_DIR"):
        rg.load(store_root, out_of_core=True)
    assert blocked.read_text() == "a file where the cache folder would be"
