"""`rungroup cache info` and `rungroup cache clear`."""

from __future__ import annotations

from pathlib import Path

import pytest

import rungroup as rg
from rungroup.cli import main
from rungroup.sources import cache, identity


def test_info_lists_entries_and_clear_removes_them_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    (root / "a").mkdir(parents=True)
    rows = "".join(f"{step},{1.0 / (step + 1)}\n" for step in range(25))
    (root / "a" / "progress.csv").write_text("step,loss\n" + rows)

    assert main(["cache", "info"]) == 0
    assert "entries: 0, 0 B" in capsys.readouterr().out

    rg.load(root)
    before = identity.stamps([root])
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"cache directory: {cache.cache_dir()}" in out
    assert "entries: 1," in out and f"'{root}' (csv): 1 runs, 25 points" in out

    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.startswith("removed 1 entries")
    assert cache.entries() == []
    assert not any(p.is_file() for p in cache.cache_dir().rglob("*"))
    assert identity.stamps([root]) == before  # the source is never touched


def test_the_default_directory_is_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("sys.platform", "linux")
    assert cache.cache_dir() == tmp_path / "xdg" / "rungroup"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # not absolute: ignored, as the spec says
    assert cache.cache_dir() == Path.home() / ".cache" / "rungroup"


def test_a_cache_inside_the_source_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing there would change the source (and is never wanted in a data folder)."""
    root = tmp_path / "runs"
    (root / "a").mkdir(parents=True)
    (root / "a" / "progress.csv").write_text("step,loss\n0,1.0\n1,0.5\n")
    monkeypatch.setenv(cache.ENV, str(root / ".cache"))
    before = identity.stamps([root])
    assert len(rg.load(root)) == 1
    assert identity.stamps([root]) == before
    assert not (root / ".cache").exists()
