"""A later load reads the cache plus only what changed: the follower kept in the cache entry
(`sources/resume.py`) resumes where the last load ended.

Each test grows a source the ways a project's logs grow (points appended to a run's file, a
new run, a run deleted) and checks, after every change, that a load through the cache equals
a cache-less load, that the source's bulk reader was not called, and that the follower read
only the bytes or rows that were added.
"""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from test_cache_sources import assert_identical

import rungroup as rg
from rungroup.sources import cache, resume
from rungroup.sources.registry import format_for


@contextmanager
def polls(kind: type) -> Iterator[list[Any]]:
    """Record every follower of `kind` that polls (to read its `bytes_read` / `rows_read`)."""
    seen: list[Any] = []
    original = kind.poll

    def poll(self: Any) -> Any:
        result = original(self)
        seen.append(self)
        return result

    kind.poll = poll
    try:
        yield seen
    finally:
        kind.poll = original


def bulk_not_called(source: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    found = format_for(source)
    assert found is not None

    def refuse(*args: Any, **kwargs: Any) -> rg.Runs:
        raise AssertionError("the whole source was read again")

    monkeypatch.setattr(found, "load", refuse)


def load_checked(source: Any, monkeypatch: pytest.MonkeyPatch, *, resumed: bool) -> rg.Runs:
    """A load through the cache equal to a cache-less one; `resumed`: without the bulk
    reader (the kept follower read what changed)."""
    fresh = rg.load(source, cache=False)
    with monkeypatch.context() as patch:
        if resumed:
            bulk_not_called(source, patch)
        loaded = rg.load(source)
    assert_identical(loaded, fresh)
    return loaded


def no_frames(name: str) -> pl.DataFrame:
    """The frames of a state read back, for a test that only looks at the rest of it."""
    return pl.DataFrame()


def event_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("events.out.tfevents.*"))


def flushed(writer: Any) -> None:
    """`writer.flush()`, then wait until its event file ends with a whole record (tensorboardX
    writes from a thread: a load right after `flush()` may see half a record, and warn)."""
    import time

    from rungroup.sources.tensorboard.follower import complete_length

    writer.flush()
    deadline = time.monotonic() + 10
    while True:
        data = b"".join(p.read_bytes() for p in Path(writer.logdir).glob("events.out.tfevents.*"))
        if complete_length(data) == len(data):
            return
        assert time.monotonic() < deadline, "tensorboardX did not finish its record"
        time.sleep(0.01)


# --- TensorBoard: event files appended to, a new run, a run deleted -------------------------


def test_tensorboard_resumes_on_appended_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tensorboardX import SummaryWriter

    from rungroup.sources.tensorboard.follower import TensorBoardFollower

    root = tmp_path / "logs"
    writers = {name: SummaryWriter(str(root / name)) for name in ("a", "b")}

    def log(name: str, start: int, stop: int) -> None:
        for step in range(start, stop):
            writers[name].add_scalar("loss", 1.0 / (step + 1), step)
            writers[name].add_scalar("acc", step * 0.01, step)
        flushed(writers[name])

    log("a", 0, 30)
    log("b", 0, 20)
    load_checked(root, monkeypatch, resumed=False)  # cold: the bulk reader, entry written
    log("a", 30, 40)
    with polls(TensorBoardFollower) as seen:
        # the first change since a full read: a follower reads all once and is kept
        load_checked(root, monkeypatch, resumed=True)
    assert seen[-1].bytes_read == event_bytes(root)

    for stage in range(3):
        before = event_bytes(root)
        log("a", 40 + stage * 10, 50 + stage * 10)  # appended to both runs' files
        log("b", 20 + stage * 10, 30 + stage * 10)
        with polls(TensorBoardFollower) as seen:
            loaded = load_checked(root, monkeypatch, resumed=True)
        assert seen[-1].bytes_read == event_bytes(root) - before  # only the appended bytes
        assert seen[-1].bytes_read < before / 2
    # (tensorboardX's writer thread may hold the last few points back: `fresh` is the truth)
    assert loaded.history.select(pl.len()).collect().item() > 200

    # unchanged: served from the entry, no follower at all
    with polls(TensorBoardFollower) as seen:
        load_checked(root, monkeypatch, resumed=True)
    assert seen == []

    writers["c"] = SummaryWriter(str(root / "c"))  # a new run
    log("c", 0, 5)
    before = event_bytes(root)
    log("a", 70, 75)
    with polls(TensorBoardFollower) as seen:
        loaded = load_checked(root, monkeypatch, resumed=True)
    assert len(loaded) == 3
    new_run = sum(p.stat().st_size for p in (root / "c").iterdir())
    assert seen[-1].bytes_read <= event_bytes(root) - before + new_run

    for writer in writers.values():
        writer.close()
    shutil.rmtree(root / "b")  # a run deleted
    with polls(TensorBoardFollower) as seen:
        loaded = load_checked(root, monkeypatch, resumed=True)
    assert sorted(loaded.runs["id"].cast(pl.String).to_list()) == ["a", "c"]
    assert len(seen) == 1
    assert [e.source for e in cache.entries()] == [str(root.absolute())]


def test_a_rewritten_event_file_is_read_again_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file rewritten in place (same name, same inode, longer) is not an append: the kept
    follower would read its new bytes from the old offset; the whole source is read."""
    from tensorboardX import SummaryWriter

    root = tmp_path / "logs"
    writer = SummaryWriter(str(root / "a"))
    for step in range(20):
        writer.add_scalar("loss", 1.0, step)
    writer.close()
    load_checked(root, monkeypatch, resumed=False)
    (path,) = root.rglob("events.out.tfevents.*")
    path.touch()
    load_checked(root, monkeypatch, resumed=True)  # a follower is kept now
    data = path.read_bytes()
    inode = path.stat().st_ino
    other = tmp_path / "other"
    writer = SummaryWriter(str(other))
    for step in range(40):
        writer.add_scalar("loss", 2.0, step)
    writer.close()
    (longer,) = other.rglob("events.out.tfevents.*")
    with path.open("r+b") as handle:  # same inode, rewritten from the start
        handle.write(longer.read_bytes())
    assert path.stat().st_ino == inode and path.stat().st_size > len(data)
    loaded = load_checked(root, monkeypatch, resumed=False)
    assert loaded.history.collect()["value"].to_list() == [2.0] * 40


# --- MLflow SQLite: new rows only -----------------------------------------------------------


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s, once a session)
def test_mlflow_sqlite_resumes_on_new_rows(
    tmp_path: Path, empty_mlflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from rungroup.sources.mlflow.follower import MlflowFollower

    path = tmp_path / "mlflow.db"
    shutil.copy(empty_mlflow_db, path)
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    experiment = client.create_experiment("resumed")

    def log(run_id: str, start: int, stop: int) -> None:
        metrics = [
            Metric(k, step * 0.1 + len(k), 1_700_000_000_000 + step, step)
            for step in range(start, stop)
            for k in ("loss", "acc")
        ]
        client.log_batch(run_id, metrics=metrics)

    def new(name: str, steps: int) -> str:
        run_id: str = client.create_run(experiment, run_name=name).info.run_id
        client.log_param(run_id, "lr", "0.1")
        log(run_id, 0, steps)
        return run_id

    a = new("a", 50)
    load_checked(path, monkeypatch, resumed=False)
    log(a, 50, 60)
    load_checked(path, monkeypatch, resumed=True)  # the follower is kept from now on
    b = new("b", 30)
    with polls(MlflowFollower) as seen:
        load_checked(path, monkeypatch, resumed=True)
    assert seen[-1].rows_read["metrics"] == 60  # b's rows, not a's 120 again
    log(a, 60, 80)
    log(b, 30, 35)
    with polls(MlflowFollower) as seen:
        load_checked(path, monkeypatch, resumed=True)
    assert seen[-1].rows_read["metrics"] == 50
    client.set_terminated(a)
    client.delete_run(b)
    with polls(MlflowFollower) as seen:
        loaded = load_checked(path, monkeypatch, resumed=True)
    assert seen[-1].rows_read.get("metrics", 0) == 0
    assert loaded.runs["state"].to_list() == ["finished"]


# --- the state itself -----------------------------------------------------------------------


def _tensorboard(root: Path, steps: int) -> None:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(root / "a"))
    for step in range(steps):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
    writer.close()


def _kept_state(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A source whose entry keeps a follower; returns the state's file."""
    _tensorboard(root, 10)
    rg.load(root)
    next(root.rglob("events.out.tfevents.*")).touch()
    rg.load(root)
    (state,) = (cache.cache_dir() / cache.LAYOUT).rglob("*.follower.pickle")
    return state


def test_a_state_that_names_anything_else_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state is unpickled by an unpickler that builds only followers, frames and plain
    values: one naming `os.system` is damage (rebuilt from the source), never run."""
    root = tmp_path / "logs"
    state = _kept_state(root, monkeypatch)
    evil = pickle.dumps({"version": resume.STATE_VERSION, "run": _Evil()})
    with pytest.raises(pickle.UnpicklingError, match="may not build"):
        resume.restore("tensorboard", root, evil, no_frames)
    _replace_kept(state, evil)
    next(root.rglob("events.out.tfevents.*")).touch()
    with pytest.warns(cache.CacheWarning, match="damaged"):
        loaded = rg.load(root)
    assert_identical(loaded, rg.load(root, cache=False))
    assert not (tmp_path / "ran").exists()


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("touch ran",))


def _replace_kept(state: Path, data: bytes) -> None:
    """Put `data` in place of the kept state, its size and CRC in the manifest (damage the
    checksums would not catch)."""
    import json
    import zlib

    manifest_path = state.parent / cache.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    state.unlink()
    state.write_bytes(data)
    manifest["files"]["follower"].update(size=len(data), crc32=zlib.crc32(data))
    manifest_path.write_text(json.dumps(manifest))


def test_a_state_of_another_version_or_source_text_is_not_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "logs"
    _kept_state(root, monkeypatch)
    (state,) = (cache.cache_dir() / cache.LAYOUT).rglob("*.follower.pickle")
    data = state.read_bytes()
    assert resume.restore("tensorboard", root, data, no_frames) is not None
    assert resume.restore("tensorboard", str(root) + "/", data, no_frames) is None
    assert resume.restore("wandb", root, data, no_frames) is None
    monkeypatch.setattr(resume, "STATE_VERSION", resume.STATE_VERSION + 1)
    assert resume.restore("tensorboard", root, data, no_frames) is None
    # not resumable: a follower reads the source in full, equal to a cache-less load
    _tensorboard(root, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error", cache.CacheWarning)
        load_checked(root, monkeypatch, resumed=True)


def test_a_truncated_state_is_damage_and_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "logs"
    state = _kept_state(root, monkeypatch)
    _replace_kept(state, state.read_bytes()[:100])
    next(root.rglob("events.out.tfevents.*")).touch()
    with pytest.warns(cache.CacheWarning, match="damaged"):
        loaded = rg.load(root)
    assert_identical(loaded, rg.load(root, cache=False))
    load_checked(root, monkeypatch, resumed=True)  # rewritten whole


# --- W&B: a .wandb file growing record by record ---------------------------------------------


def test_wandb_resumes_on_appended_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A run file written in pieces (records across LevelDB blocks included, as in
    test_follow_wandb): after each piece the load reads only the new bytes; the points the
    kept state had handed on are not kept twice (`resume._compact_wandb`)."""
    from test_follow_wandb import _field, _item, _log, _varint

    from rungroup.sources.wandb.follower import WandbFollower

    run = _field(
        17, _field(1, b"abc") + _field(3, b"grown") + _field(4, _field(1, _item("lr", "1")))
    )
    rows = [
        _field(
            2, _field(1, _item("loss", repr(1.0 / (step + 1)))) + _field(2, b"\x08" + _varint(step))
        )
        for step in range(3000)
    ]
    data = _log([run, *rows])
    assert len(data) > 3 * 32768
    source = tmp_path / "wandb"
    path = source / "offline-run-x-abc" / "run-abc.wandb"
    path.parent.mkdir(parents=True)
    path.write_bytes(data[: len(data) // 4])
    load_checked(source, monkeypatch, resumed=False)
    for cut in (len(data) // 3, len(data) // 2, len(data) - 1000, len(data)):
        before = path.stat().st_size
        with path.open("ab") as handle:
            handle.write(data[before:cut])
        with polls(WandbFollower) as seen:
            loaded = load_checked(source, monkeypatch, resumed=True)
        if cut > len(data) // 3:  # the first change was read in full by a new follower
            assert seen[-1].bytes_read <= cut - before + 32768  # a record cut off is re-read
        (state,) = (cache.cache_dir() / cache.LAYOUT).rglob("*.follower.pickle")
        restored = resume.restore("wandb", source, state.read_bytes(), no_frames)
        kept = next(iter(restored._files.values()))
        assert len(kept.reading.run.values) == kept.emitted == 1
    assert loaded.history.select(pl.len()).collect().item() == 3000


def test_a_running_run_is_kept_but_its_state_derived_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A W&B run without an exit record is `running` while its file is recent, `crashed`
    after: the entry is written (the follower kept) but never served as it is; each load
    polls the follower, which derives the state again from the clock."""
    from test_follow_wandb import _field, _item, _log, _varint

    from rungroup.sources.wandb import offline

    run = _field(17, _field(1, b"run") + _field(3, b"live") + _field(4, _field(1, _item("a", "1"))))
    rows = [
        _field(2, _field(1, _item("loss", repr(step * 0.5))) + _field(2, b"\x08" + _varint(step)))
        for step in range(50)
    ]
    source = tmp_path / "wandb"
    path = source / "offline-run-y-run" / "run-run.wandb"
    path.parent.mkdir(parents=True)
    path.write_bytes(_log([run, *rows]))
    assert load_checked(source, monkeypatch, resumed=False).runs["state"].to_list() == ["running"]
    assert len(cache.entries()) == 1  # written: the next load keeps a follower
    path.touch()
    assert load_checked(source, monkeypatch, resumed=True).runs["state"].to_list() == ["running"]
    monkeypatch.setattr(offline, "RUNNING_WITHIN", 0.0)  # the writer went quiet: no file changed
    loaded = load_checked(source, monkeypatch, resumed=True)
    assert loaded.runs["state"].to_list() == ["crashed"]


# --- a kept state damaged, deleted while read, or resumed by two processes at once ------------

RESUMABLE_SOURCES = ("mlflow_sqlite", "tensorboard_logs", "wandb_dir")


@pytest.fixture(params=RESUMABLE_SOURCES)
def kept(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A private copy of a source written by its real client (`conftest.py`), loaded cold
    and after one change, so that its entry keeps a follower's state."""
    original: Path = request.getfixturevalue(request.param)
    copy = tmp_path / "source" / original.name
    if original.is_file():
        copy.parent.mkdir()
        shutil.copy(original, copy)
    else:
        shutil.copytree(original, copy, symlinks=True)
    rg.load(copy)
    _touch(copy)
    rg.load(copy)
    assert len(_states()) == 1
    return copy


def _touch(source: Path) -> None:
    """A change of the files' identity that changes no content (a new mtime)."""
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    os.utime(files[-1], ns=(files[-1].stat().st_atime_ns, files[-1].stat().st_mtime_ns + 10**9))


def _states() -> list[Path]:
    return sorted((cache.cache_dir() / cache.LAYOUT).rglob("*.follower.pickle"))


def _next_load_is_quiet_and_cached(source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", cache.CacheWarning)
        load_checked(source, monkeypatch, resumed=True)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "points truncated"])
def test_a_damaged_state_is_reported_once_and_rebuilt(
    kept: Path, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (state,) = _states()
    if damage == "points truncated":  # the follower's points, an Arrow file beside the pickle
        (state,) = state.parent.glob("*.follower._points.arrow")
        damage = "truncated"
    data = state.read_bytes()
    state.unlink()  # files are never rewritten in place: a damaged one is a new file
    state.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(len(data)))
    _touch(kept)
    with pytest.warns(cache.CacheWarning, match="damaged"):
        loaded = rg.load(kept)
    assert_identical(loaded, rg.load(kept, cache=False))
    _next_load_is_quiet_and_cached(kept, monkeypatch)


def test_a_state_deleted_while_read_is_a_plain_miss(
    kept: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer (or `clear`) removed the state between the manifest and the state:
    a new follower reads the source, without a warning."""
    original = cache._checked

    def vanishing(entry: Any, manifest: dict[str, Any], name: str) -> Path:
        path = original(entry, manifest, name)
        if name == "follower":
            path.unlink()
        return path

    _touch(kept)
    with monkeypatch.context() as patch:
        patch.setattr(cache, "_checked", vanishing)
        _next_load_is_quiet_and_cached(kept, monkeypatch)
    _next_load_is_quiet_and_cached(kept, monkeypatch)
    assert len(_states()) == 1


_RESUMER = """
import sys
import rungroup as rg
runs = rg.load(sys.argv[1])
print(len(runs), runs.history.collect().height)
"""


def test_two_processes_resuming_at_once(kept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two notebooks resume the same state at once, three times over: both load the source
    whole, and one whole entry is left (one state), which a third load uses."""
    import subprocess
    import sys

    fresh = rg.load(kept, cache=False)
    expected = f"{len(fresh)} {fresh.history.collect().height}"
    for _ in range(3):
        _touch(kept)
        resumers = [
            subprocess.Popen(
                [sys.executable, "-W", "error::rungroup.runs.LoadWarning", "-c", _RESUMER, kept],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for resumer in resumers:
            out, err = resumer.communicate(timeout=300)
            assert resumer.returncode == 0, err
            assert out.split("\n")[-2] == expected
        [entry] = cache.entries()
        named = cache._current_files(entry.folder)
        assert len(named) == 5 and all(path.exists() for path in named)  # frames, state
        _next_load_is_quiet_and_cached(kept, monkeypatch)


def test_a_tensorboard_template_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A template's matches are listed again by the follower: a new match is a new run, the
    appended bytes of the others are all that is read."""
    from tensorboardX import SummaryWriter

    from rungroup.sources.tensorboard.follower import TensorBoardFollower

    template = str(tmp_path / "{optimiser}" / "seed_{seed}")
    writers: dict[str, Any] = {}

    def log(run: str, start: int, stop: int) -> None:
        if run not in writers:
            writers[run] = SummaryWriter(str(tmp_path / run))
        writer = writers[run]
        for step in range(start, stop):
            writer.add_scalar("loss", 1.0 / (step + 1 + len(run)), step)
        flushed(writer)

    log("adam/seed_0", 0, 20)
    load_checked(template, monkeypatch, resumed=False)
    log("adam/seed_0", 20, 30)
    load_checked(template, monkeypatch, resumed=True)
    before = event_bytes(tmp_path)
    log("adam/seed_0", 30, 40)
    log("sgd/seed_1", 0, 10)
    with polls(TensorBoardFollower) as seen:
        loaded = load_checked(template, monkeypatch, resumed=True)
    assert seen[-1].bytes_read == event_bytes(tmp_path) - before
    assert sorted(loaded.runs["config.optimiser"].to_list()) == ["adam", "sgd"]
    for writer in writers.values():
        writer.close()
