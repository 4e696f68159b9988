"""A full disk, on a real small file system (tmpfs): logging never raises, what waits is
written when space comes back, finish() says what could not be written, and nothing already
written is lost."""

from __future__ import annotations

import contextlib
import errno
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

import rungroup as rg
from rungroup import tracking
from rungroup.tracking import WriteWarning


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, mounted for the test (root only: skipped where mounting is refused)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """A file that takes every free byte of `disk`."""
    filler = disk / f"filler-{uuid.uuid4().hex}"
    with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\xff" * 4096)
    with filler.open("ab", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\xff")
    with pytest.raises(OSError) as error:
        (disk / "probe").write_bytes(b"x" * 4096)
    assert error.value.errno == errno.ENOSPC
    return filler


def loss_points(disk: Path) -> list[float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rg.LoadWarning)
        runs = rg.load(disk / "p")
    history = runs.history.collect()
    return history.filter(pl.col("metric") == "loss").sort("step")["value"].to_list()


def test_a_full_disk_never_reaches_the_training_loop(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "MAX_BUFFERED_POINTS", 500)  # log() flushes by itself
    monkeypatch.setattr(tracking, "FLUSH_INTERVAL", 3600.0)  # only the flushes the test makes
    run = rg.init(dir=small_disk, project="p", id="r")
    for step in range(300):
        run.log({"loss": float(step), "acc": 0.5}, step=step)
    run._flush()
    assert run.unwritten_points == 0
    filler = fill(small_disk)

    # full: log() keeps going (its own flushes fail), the points wait and are counted
    with pytest.warns(WriteWarning, match=r"cannot write to .*history\.rgh.*points wait"):
        for step in range(300, 3000):
            run.log({"loss": float(step), "acc": 0.5}, step=step)
        run._flush()
    assert run.unwritten_points == 2 * 2700
    assert loss_points(small_disk) == [float(s) for s in range(300)]  # nothing written lost

    # space comes back: the next flush writes everything that waited, in order
    filler.unlink()
    with pytest.warns(WriteWarning, match="writing again"):
        run._flush()
    assert run.unwritten_points == 0
    assert loss_points(small_disk) == [float(s) for s in range(3000)]

    # full again at the end: finish() does not raise, and says what is lost
    filler = fill(small_disk)
    for step in range(3000, 3100):
        run.log({"loss": float(step), "acc": 0.5}, step=step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.finish()
    history = run.dir / "history.rgh"
    assert [str(w.message) for w in caught if w.category is WriteWarning] == [
        f"rungroup: run r: cannot write to {history} (No space left on device): 200 points "
        "wait in memory and are written again on the next flush; they are lost if the process "
        "ends first",
        f"rungroup: run r: finished, but cannot write {run.dir / 'run.json'} (No space left "
        "on device), so it does not say that the run ended; 200 points could not be written "
        f"to {history} and are lost",
    ]
    assert run.state == "finished"
    assert run.unwritten_points == 200
    filler.unlink()
    assert loss_points(small_disk) == [float(s) for s in range(3000)]


def test_waiting_points_are_bounded_and_the_dropped_ones_counted(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "MAX_BUFFERED_POINTS", 100)
    monkeypatch.setattr(tracking, "MAX_UNWRITTEN_POINTS", 1000)
    monkeypatch.setattr(tracking, "FLUSH_INTERVAL", 3600.0)
    monkeypatch.setattr(tracking, "WARN_INTERVAL", 0.0)
    run = rg.init(dir=small_disk, project="p", id="r")
    filler = fill(small_disk)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(5000):
            run.log({"loss": float(step)}, step=step)
    messages = [str(w.message) for w in caught if w.category is WriteWarning]
    assert messages and "older points were dropped to stay within 1000" in messages[-1]
    waiting = sum(count for _, count in run._unwritten)
    assert waiting <= 1000
    at_risk = run.unwritten_points  # waiting + dropped (a first record fit in the page's slack)
    assert at_risk > 4000
    filler.unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.finish()
    lost = at_risk - waiting
    assert [str(w.message) for w in caught if w.category is WriteWarning] == [
        f"rungroup: run r: writing again to {run.dir / 'history.rgh'}; "
        "the waiting points are written",
        f"rungroup: run r: finished, but {lost} points could not be written to "
        f"{run.dir / 'history.rgh'} and are lost",
    ]
    # the newest points were kept and written (all but one 100-point record of the bound: a
    # record that was half written when the disk filled is kept, to be completed), and what
    # was written before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rg.LoadWarning)
        points = loss_points(small_disk)
    assert len(points) == 5000 - lost
    assert points[-900:] == [float(s) for s in range(4100, 5000)]
    assert points == sorted(set(points)) and set(points) <= {float(s) for s in range(5000)}
