"""Big W&B folders decoded by this process and a worker process together (`wandb/parallel.py`,
`wandb/worker.py`): the same runs, history and warnings as this process alone, whatever the
worker does (answers, cannot start, dies, writes garbage, reports an error)."""

from __future__ import annotations

import io
import pickle
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rungroup as rg
from rungroup.sources.wandb import offline, parallel, worker

pytestmark = pytest.mark.slow  # each load with a worker starts an interpreter

_READ_BATCH = offline._read_batch


@pytest.fixture
def folder(wandb_dir: Path, tmp_path: Path) -> Path:
    """The six runs written by wandb, each folder copied once more: twelve files."""
    root = tmp_path / "wandb"
    shutil.copytree(wandb_dir, root)
    for run in sorted(root.glob("*run-*")):
        shutil.copytree(run, root / f"{run.name}-copy")
    return root


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Every worker started, with the worker used for any folder, one file a batch, and this
    process slowed down so that the worker gets its share."""
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "BATCH", 1)
    here = offline._read_batch

    def slow_here(batch: list[Path]) -> list[tuple[Path, Any]]:
        time.sleep(0.15)
        return here(batch)

    monkeypatch.setattr(offline, "_read_batch", slow_here)
    workers: list[subprocess.Popen[bytes]] = []
    start = parallel._start_worker

    def spy() -> subprocess.Popen[bytes] | None:
        process = start()
        if process is not None:
            workers.append(process)
        return process

    monkeypatch.setattr(parallel, "_start_worker", spy)
    return workers


def _load(source: Path) -> tuple[rg.Runs, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = rg.load_wandb(source, progress_bar=False).collect()
    return runs, sorted(str(w.message) for w in caught)


def _assert_same(a: tuple[rg.Runs, list[str]], b: tuple[rg.Runs, list[str]]) -> None:
    assert a[0].runs.equals(b[0].runs, null_equal=True)
    history_a, history_b = a[0].history.collect(), b[0].history.collect()
    assert history_a.equals(history_b, null_equal=True)
    assert np.array_equal(
        history_a["value"].to_numpy().view(np.uint64),
        history_b["value"].to_numpy().view(np.uint64),
    )
    assert a[1] == b[1]


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of files of each batch the worker decoded and this process took."""
    counts: list[int] = []
    original = parallel._received

    def spy(batch: list[Path], reply: Any, general: Any) -> Iterator[Any]:
        counts.append(len(batch))
        return original(batch, reply, general)

    monkeypatch.setattr(parallel, "_received", spy)
    return counts


def test_runs_decoded_by_the_worker_are_those_decoded_here(
    folder: Path,
    started: list[subprocess.Popen[bytes]],
    received: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    together = _load(folder)
    assert len(started) == 1 and received  # the worker decoded some of the files
    assert started[0].returncode == 0  # told to stop, and stopped
    _assert_same(together, _alone_load(folder, monkeypatch))
    assert together[0].runs.height == 12


def _alone_load(source: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[rg.Runs, list[str]]:
    """The same folder read by this process alone, at its own speed."""
    with monkeypatch.context() as patch:
        patch.setattr(parallel, "MIN_BYTES", 1 << 62)
        patch.setattr(offline, "_read_batch", _READ_BATCH)
        return _load(source)


def test_a_damaged_file_the_worker_meets_is_reported_here_by_name(
    folder: Path,
    started: list[subprocess.Popen[bytes]],
    received: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = offline._find_files(folder)
    victim = files[-1]  # the worker decodes from the back
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    together = _load(folder)
    assert received
    assert any(str(victim) in message and "checksum" in message for message in together[1])
    _assert_same(together, _alone_load(folder, monkeypatch))


@pytest.mark.parametrize(
    "behaviour",
    [
        "import sys; sys.exit(3)",  # cannot start, as far as we can tell
        "import sys; sys.stdin.buffer.read(1); sys.stdout.buffer.write(b'garbage'); sys.exit()",
        "import pickle, sys\n"
        "while pickle.load(sys.stdin.buffer) is not None:\n"
        "    pickle.dump(('error', 'ValueError: broken'), sys.stdout.buffer)\n"
        "    sys.stdout.buffer.flush()",
        "import sys, time; sys.stdin.buffer.read(1); time.sleep(600)",
    ],
    ids=["exits", "garbage", "error", "hangs"],
)
def test_a_worker_that_fails_leaves_its_files_to_this_process(
    folder: Path,
    started: list[subprocess.Popen[bytes]],
    received: list[int],
    monkeypatch: pytest.MonkeyPatch,
    behaviour: str,
) -> None:
    monkeypatch.setattr(parallel, "worker_command", lambda: [sys.executable, "-c", behaviour])
    monkeypatch.setattr(parallel, "PATIENCE", 1.0)
    together = _load(folder)
    assert len(started) == 1 and not received
    assert started[0].poll() is not None  # not left running
    _assert_same(together, _alone_load(folder, monkeypatch))


def test_a_worker_that_cannot_be_started_leaves_everything_here(
    folder: Path,
    started: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "worker_command", lambda: [str(folder / "no-such-python")])
    together = _load(folder)
    assert not started
    _assert_same(together, _alone_load(folder, monkeypatch))


def test_the_worker_is_ended_when_the_reader_stops_early(
    folder: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    reading = offline._read_runs(offline._find_files(folder))
    next(reading)
    reading.close()
    assert len(started) == 1
    started[0].wait(timeout=10)


def test_more_cores_more_workers(
    folder: Path,
    started: list[subprocess.Popen[bytes]],
    received: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "_cores", lambda: 3)
    together = _load(folder)
    assert len(started) == 2 and received
    assert all(worker.returncode == 0 for worker in started)
    _assert_same(together, _alone_load(folder, monkeypatch))


def test_small_folders_start_no_worker(
    folder: Path, started: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "MIN_BYTES", 1 << 30)
    _load(folder)
    assert not started


def test_the_worker_answers_each_batch_with_runs_points_and_warnings(folder: Path) -> None:
    """`worker.serve` in this process: one reply a request, the points sent apart."""
    files = offline._find_files(folder)
    damaged = folder / "damaged.wandb"
    damaged.write_bytes(files[0].read_bytes()[:5000])  # truncated
    requests = io.BytesIO()
    pickle.dump([str(f) for f in files[:3]], requests)
    pickle.dump([str(damaged), str(folder / "missing.wandb")], requests)
    pickle.dump(None, requests)
    requests.seek(0)
    replies = io.BytesIO()
    worker.serve(requests, replies)
    replies.seek(0)
    first, second = pickle.load(replies), pickle.load(replies)
    with pytest.raises(EOFError):
        pickle.load(replies)
    assert first[0] == "ok" and len(first[1]) == 3 and all(o is not None for o in first[1])
    assert sum(first[3]) == first[2].height > 0
    runs = [offline._read_run(f) for f in files[:3]]
    assert [o[0].run_id for o in first[1]] == [r.run_id for r in runs if r is not None]
    assert second[0] == "ok" and second[1] == [None, None] and second[2] is None
