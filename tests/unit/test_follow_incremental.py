"""What a store follower keeps between polls equals what a fresh load derives from scratch.

Hand-written stores (steps repeated and out of order, NaN values, metrics appearing late,
records cut in two by a poll, runs appearing and finishing between polls) are followed by a
live `Explorer`; after every poll its runs, history, metrics and final values (kept up to
date from the appended rows alone) must equal those of `rungroup.load()` and
a loop over the history of the same store (`final_values_reference`).
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import warnings
from array import array
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
from engine_helpers import final_values_reference
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import rungroup as rg
from rungroup import store
from rungroup.runs import LoadWarning
from rungroup.sources.store.follower import StoreFollower
from rungroup.widget import Explorer

METRICS = ("loss", "acc", "lr")
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

points = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.sampled_from(METRICS),
        st.one_of(st.floats(-5, 5), st.just(math.nan), st.just(math.inf)),
    ),
    min_size=1,
    max_size=6,
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 2), points),
        st.tuples(st.just("torn"), st.integers(0, 2), points),
        st.tuples(st.just("finish"), st.integers(0, 2), st.just([])),
        st.tuples(st.just("config"), st.integers(0, 2), st.just([])),
        st.tuples(st.just("poll"), st.just(0), st.just([])),
    ),
    min_size=1,
    max_size=14,
)


class _Run:
    """One hand-written run folder: run.json and history records as the writer makes them."""

    def __init__(self, root: Path, index: int) -> None:
        self.id = f"run{index}"
        self.folder = root / "p" / self.id
        self.folder.mkdir(parents=True)
        self.names: list[str] = []
        self.meta: dict[str, Any] = {
            "format_version": store.FORMAT_VERSION,
            "id": self.id,
            "name": f"name-{index}",
            "project": "p",
            "group": "g",
            "config": {"lr": 0.1 * (index + 1)},
            "summary": {},
            "state": "running",
            "created_at": CREATED.replace(second=index).isoformat(),
            "heartbeat_at": datetime.now(timezone.utc).isoformat(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "runtime": 1.0,
        }
        self.save_meta()
        (self.folder / store.HISTORY_FILE).write_bytes(store.HISTORY_MAGIC)
        self.torn = b""

    def save_meta(self) -> None:
        store.write_json_atomically(self.folder / store.META_FILE, self.meta)

    def record(self, logged: list[tuple[int, str, float]]) -> bytes:
        for _, metric, _ in logged:
            if metric not in self.names:
                self.names.append(metric)
        return store.encode_record(
            self.names,
            array("q", [s for s, _, _ in logged]),
            array("d", [CREATED.timestamp() + 0.5 * s for s, _, _ in logged]),
            array("I", [self.names.index(m) for _, m, _ in logged]),
            array("d", [v for _, _, v in logged]),
        )

    def append(self, data: bytes) -> None:
        with (self.folder / store.HISTORY_FILE).open("ab") as handle:
            handle.write(data)


def _apply(root: Path, runs: dict[int, _Run], operation: tuple[str, int, Any]) -> None:
    kind, index, logged = operation
    run = runs.get(index)
    if run is None:
        run = runs[index] = _Run(root, index)
    if run.torn:  # the rest of a record cut by the previous poll
        run.append(run.torn)
        run.torn = b""
    if kind == "write":
        run.append(run.record(logged))
    elif kind == "torn":
        data = run.record(logged)
        run.append(data[: len(data) // 2])
        run.torn = data[len(data) // 2 :]
    elif kind == "finish" and run.meta["state"] == "running":
        run.meta["state"] = "finished"
        run.save_meta()
    elif kind == "config":
        run.meta["config"] = {**run.meta["config"], "seed": len(run.names)}
        run.meta["heartbeat_at"] = datetime.now(timezone.utc).isoformat()
        run.save_meta()


def _history(runs: rg.Runs) -> pl.DataFrame:
    return (
        runs.history.collect()
        .with_columns(pl.col("run_id", "metric").cast(pl.String))
        .sort("run_id", "metric", "step", "time", "value", nulls_last=True)
    )


def _sorted_columns(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(sorted(frame.columns))


def _check(widget: Explorer, root: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoadWarning)
        fresh = rg.load(root)
    shown = widget.runs
    assert_frame_equal(shown.runs, fresh.runs)
    assert_frame_equal(_history(shown), _history(fresh))
    assert shown.metrics == fresh.metrics
    assert_frame_equal(
        _sorted_columns(widget._session.finals()), _sorted_columns(final_values_reference(fresh))
    )


@settings(max_examples=40, deadline=None)
@given(operations)
def test_kept_state_equals_a_fresh_load_after_every_poll(script: list[Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="rungroup-follow-") as folder:
        root = Path(folder)
        runs = {0: _Run(root, 0)}
        widget = Explorer(root)
        for operation in [*script, ("poll", 0, [])]:
            if operation[0] == "poll":
                known = widget._session._workspace._last is not None
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", LoadWarning)
                    widget.refresh()
                follower = widget._live.follower
                assert isinstance(follower, StoreFollower)
                if known and follower.appended is not None:  # updated, not derived again
                    assert widget._session._workspace._last is not None
                _check(widget, root)
            else:
                _apply(root, runs, operation)
        widget.close()


def test_appended_holds_what_the_history_gained(tmp_path: Path) -> None:
    run = _Run(tmp_path, 0)
    follower = StoreFollower(tmp_path)
    first, _ = follower.poll()
    run.append(run.record([(0, "loss", 1.0), (1, "loss", 0.5)]))
    second, changed = follower.poll()
    assert changed and follower.appended_to is first
    assert follower.appended is not None and follower.appended.height == 2
    run.append(run.record([(2, "acc", 0.9)]))
    third, _ = follower.poll()
    assert follower.appended_to is second
    before = second.history.collect().drop("timestamp")
    after = third.history.collect().drop("timestamp")
    assert_frame_equal(pl.concat([before, follower.appended]), after, categorical_as_str=True)
    assert third.metrics == ["acc", "loss"]

    # a history that shrank is read again: rows were removed, nothing is "appended"
    (run.folder / store.HISTORY_FILE).write_bytes(
        store.HISTORY_MAGIC + run.record([(0, "lr", 0.1)])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoadWarning)
        fourth, changed = follower.poll()
    assert changed and follower.appended is None
    assert fourth.metrics == ["lr"]
    assert _history(fourth)["value"].to_list() == [0.1]


def test_a_heartbeat_keeps_the_fixed_columns_and_a_new_name_rebuilds_them(
    tmp_path: Path,
) -> None:
    run = _Run(tmp_path, 0)
    follower = StoreFollower(tmp_path)
    follower.poll()
    fixed = follower._fixed
    run.meta["heartbeat_at"] = datetime.now(timezone.utc).isoformat()
    run.meta["runtime"] = 5.0
    run.save_meta()
    runs, _ = follower.poll()
    assert follower._fixed is fixed
    assert runs.runs["runtime"].to_list() == [5.0]
    run.meta["name"] = "renamed"
    run.save_meta()
    runs, changed = follower.poll()
    assert changed and follower._fixed is not fixed
    assert runs.runs["name"].to_list() == ["renamed"]


def test_a_second_folder_with_the_same_id_is_skipped_history_too(tmp_path: Path) -> None:
    run = _Run(tmp_path, 0)
    run.append(run.record([(0, "loss", 1.0)]))
    copy = run.folder.parent / "copy"  # the same id in the same project
    copy.mkdir(parents=True)
    for name in (store.META_FILE, store.HISTORY_FILE):
        (copy / name).write_bytes((run.folder / name).read_bytes())
    follower = StoreFollower(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        follower.poll()
    assert any("also used by" in str(w.message) for w in caught)
    with (copy / store.HISTORY_FILE).open("ab") as handle:
        handle.write(run.record([(1, "loss", 2.0)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoadWarning)
        runs, _ = follower.poll()
        fresh = rg.load(tmp_path)
    assert_frame_equal(runs.runs, fresh.runs)
    assert_frame_equal(_history(runs), _history(fresh))


def test_a_step_logged_again_in_a_later_poll_is_the_final_value(tmp_path: Path) -> None:
    run = _Run(tmp_path, 0)
    run.append(run.record([(5, "loss", 1.0), (2, "acc", 0.5)]))
    widget = Explorer(tmp_path)
    widget.refresh()
    assert widget._session.finals()["m:loss"].to_list() == [1.0]
    for logged, final in (([(5, "loss", 2.0)], 2.0), ([(3, "loss", 3.0)], 2.0)):
        run.append(run.record(logged))
        widget.refresh()
        # updated from the appended rows, not derived again
        assert widget._session._workspace._last is not None
        assert widget._session.finals()["m:loss"].to_list() == [final]
        assert widget._session.finals()["m:acc"].to_list() == [0.5]
    widget.close()
