"""A damaged, stale, unwritable or shared cache never changes what a load returns.

Every source (written by its real client, `conftest.py`) is loaded once to fill the cache, the
cache is damaged one way, and the next load must equal a load without a cache; a damaged entry
is reported once (one `CacheWarning`) and rebuilt, so the load after it is quiet and comes from
the cache again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cache_sources import assert_identical, check

import rungroup as rg
from rungroup.sources import cache, identity

SOURCES = ("mlflow_sqlite", "mlflow_files", "tensorboard", "wandb", "csv")


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_db: Path) -> Path:
    """An MLflow SQLite store written by mlflow's client (without the session's server)."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-db") / "mlflow.db"
    shutil.copy(empty_mlflow_db, path)
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    experiment = client.create_experiment("damage")
    for seed in range(3):
        run_id = client.create_run(experiment, run_name=f"r{seed}").info.run_id
        metrics = [
            Metric("loss", 1.0 / (s + 1 + seed), 1_700_000_000_000 + s, s) for s in range(40)
        ]
        client.log_batch(run_id, metrics=metrics)
        client.set_terminated(run_id)
    return path


@pytest.fixture(params=SOURCES)
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A private copy of a source (the tests touch its files)."""
    original: Path = {
        "mlflow_sqlite": lambda: request.getfixturevalue("mlflow_db"),
        "mlflow_files": lambda: request.getfixturevalue("mlflow_files"),
        "tensorboard": lambda: request.getfixturevalue("tensorboard_logs"),
        "wandb": lambda: request.getfixturevalue("wandb_dir"),
        "csv": lambda: request.getfixturevalue("lightning_csv"),
    }[request.param]()
    copy = tmp_path / "source" / original.name
    if original.is_file():
        copy.parent.mkdir()
        shutil.copy(original, copy)
    else:
        shutil.copytree(original, copy, symlinks=True)
    return copy


def _entry_files(suffix: str) -> list[Path]:
    [entry] = cache.entries()
    return sorted(entry.folder.glob(f"*{suffix}"))


@pytest.fixture
def warm(source: Path, monkeypatch: pytest.MonkeyPatch) -> rg.Runs:
    """The source's cache-less load, with the cache filled and checked."""
    return check(source, monkeypatch)


def load_warning_count(source: Path) -> tuple[rg.Runs, list[str]]:
    """A load through the cache and the cache warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = rg.load(source)
    return runs, [str(w.message) for w in caught if issubclass(w.category, cache.CacheWarning)]


def damaged_then_rebuilt(source: Path, fresh: rg.Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    runs, notes = load_warning_count(source)
    assert_identical(runs, fresh)
    assert len(notes) == 1 and "damaged" in notes[0], notes
    assert check(source, monkeypatch) is not None  # rebuilt: the next load is from the cache
    assert load_warning_count(source)[1] == []


def test_truncated_frame(source: Path, warm: rg.Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    [history] = _entry_files(".history.arrow")
    history.write_bytes(history.read_bytes()[: history.stat().st_size // 2])
    damaged_then_rebuilt(source, warm, monkeypatch)


def test_garbage_of_the_same_size(
    source: Path, warm: rg.Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    [runs_file] = _entry_files(".runs.arrow")
    data = bytearray(runs_file.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 64] = os.urandom(64)
    runs_file.write_bytes(bytes(data))
    damaged_then_rebuilt(source, warm, monkeypatch)


def test_garbage_manifest(source: Path, warm: rg.Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    [manifest] = _entry_files(cache.MANIFEST)
    manifest.write_bytes(b'{"entry": [1, 2' + os.urandom(100))
    damaged_then_rebuilt(source, warm, monkeypatch)


def test_manifest_naming_another_file(
    source: Path, warm: rg.Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    [manifest] = _entry_files(cache.MANIFEST)
    content = json.loads(manifest.read_bytes())
    content["files"]["history"]["name"] = "../../../../etc/passwd"
    manifest.write_text(json.dumps(content))
    damaged_then_rebuilt(source, warm, monkeypatch)


def test_wrong_version_is_not_used(
    source: Path, warm: rg.Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    [manifest] = _entry_files(cache.MANIFEST)
    content = json.loads(manifest.read_bytes())
    content["entry"]["reader"] = -1  # written by another version of the reader
    content["points"] = -1
    manifest.write_text(json.dumps(content))
    runs, notes = load_warning_count(source)
    assert_identical(runs, warm)
    assert notes == []  # not damage: another version's entry, replaced
    assert [e.points for e in cache.entries()] == [warm.history.collect().height]


def test_stale_identity(source: Path, warm: rg.Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source file rewritten with the same size and mtime but as a new file (another
    inode), or touched: the entry is not used."""
    files = sorted(identity.stamps([source]))
    victim = Path(files[-1])
    status = victim.stat()
    data = victim.read_bytes()
    victim.unlink()
    victim.write_bytes(data)
    os.utime(victim, ns=(status.st_atime_ns, status.st_mtime_ns))
    check(source, monkeypatch)
    os.utime(victim, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000))
    [entry] = cache.entries()
    before = json.loads((entry.folder / cache.MANIFEST).read_bytes())["stamps"]
    check(source, monkeypatch)
    after = json.loads((entry.folder / cache.MANIFEST).read_bytes())["stamps"]
    assert before != after  # rewritten for the touched file


def test_deleted_while_read(source: Path, warm: rg.Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rungroup cache clear` (or another writer) removes the entry between the manifest and
    the frames: the source is read, quietly."""
    real = cache.json.loads
    done: list[bool] = []

    def clear_after_manifest(text: Any, **kwargs: Any) -> Any:
        value = real(text, **kwargs)
        if not done:
            done.append(True)
            cache.clear()
        return value

    monkeypatch.setattr(cache.json, "loads", clear_after_manifest)
    runs, notes = load_warning_count(source)
    monkeypatch.undo()
    assert done and notes == []
    assert_identical(runs, warm)


def _stamps_of(source: Path) -> identity.Stamps:
    return identity.stamps([source])


def test_unwritable_directory(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache directory that cannot be made (a file in its way; also what a read-only
    directory gives a user who is not root): one warning, the load goes on."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.ENV, str(blocker / "cache"))
    before = _stamps_of(source)
    fresh = rg.load(source, cache=False)
    runs, notes = load_warning_count(source)
    assert_identical(runs, fresh)
    assert len(notes) == 1 and "cannot write the cache" in notes[0]
    assert _stamps_of(source) == before  # nothing written beside the source


@contextlib.contextmanager
def _tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command")
def test_read_only_directory(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        monkeypatch.setenv(cache.ENV, str(folder))
        fresh = rg.load(source, cache=False)
        runs, notes = load_warning_count(source)
        assert_identical(runs, fresh)
        assert len(notes) == 1 and "cannot write the cache" in notes[0]


@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command")
def test_full_disk(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache on a 8 KiB tmpfs: the frames do not fit; one warning, nothing left behind."""
    with _tmpfs(tmp_path / "full", "size=8k") as folder:
        monkeypatch.setenv(cache.ENV, str(folder))
        fresh = rg.load(source, cache=False)
        runs, notes = load_warning_count(source)
        assert_identical(runs, fresh)
        assert len(notes) == 1 and "cannot write the cache" in notes[0], notes
        assert [p for p in folder.rglob("*") if p.is_file()] == []
        assert cache.entries() == []


_WRITER = """
import sys, rungroup as rg
runs = rg.load(sys.argv[1])
print(len(runs), runs.history.collect().height)
"""


def test_two_writers_in_two_processes(source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two notebooks open the same source at once, three times over: both load it whole,
    and one whole entry is left, which a third load uses."""
    fresh = rg.load(source, cache=False)
    expected = f"{len(fresh)} {fresh.history.collect().height}"
    for _ in range(3):
        cache.clear()
        writers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-W",
                    "error::rungroup.runs.LoadWarning",
                    "-c",
                    _WRITER,
                    str(source),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for writer in writers:
            out, err = writer.communicate(timeout=300)
            assert writer.returncode == 0, err
            assert out.split("\n")[-2] == expected
        [entry] = cache.entries()
        # the manifest names one writer's two files; the other writer's are removed by that
        # writer when it saw the first manifest, else later as orphans (`_ORPHAN_AFTER`)
        named = cache._current_files(entry.folder)
        assert len(named) == 2 and all(path.exists() for path in named)
        assert len(list(entry.folder.glob("*.arrow"))) in (2, 4)
        check(source, monkeypatch)
    monkeypatch.setattr(cache, "_ORPHAN_AFTER", -1.0)
    cache._remove_orphans(entry.folder)
    assert set(entry.folder.glob("*.arrow")) == cache._current_files(entry.folder)
