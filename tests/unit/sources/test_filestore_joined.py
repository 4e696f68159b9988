"""The MLflow file store's metric files read as one text (`filestore._joined`) and meta.yaml
read by libyaml: the same runs and history as the parallel scan and the pure-Python parser,
on a store written by mlflow's own client; a file that is not plain lines goes the old way."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import rungroup as rg
from rungroup.sources import files
from rungroup.sources.mlflow import filestore


def _load(root: Path, *, joined: bool) -> tuple[rg.Runs, list[str]]:
    original = filestore._joined
    if not joined:
        filestore._joined = lambda found: None  # type: ignore[assignment]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runs = rg.load_mlflow(root, progress_bar=False).collect()
    finally:
        filestore._joined = original  # type: ignore[assignment]
    return runs, sorted(str(w.message) for w in caught)


def _assert_same(root: Path) -> list[str]:
    (fast, fast_warnings), (slow, slow_warnings) = (
        _load(root, joined=True),
        _load(root, joined=False),
    )
    assert fast.runs.equals(slow.runs, null_equal=True)
    assert fast.history.collect().equals(slow.history.collect(), null_equal=True)
    assert fast_warnings == slow_warnings
    return fast_warnings


def _metric_files(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*/metrics/**/*") if p.is_file())


def test_metric_files_written_by_mlflow_are_read_as_one_text(mlflow_files: Path) -> None:
    found = [("run", path.name, path) for path in _metric_files(mlflow_files)]
    assert filestore._joined(found) is not None  # the joined path is the one tested
    assert _assert_same(mlflow_files) == []


@pytest.mark.parametrize("damage", ["blank line", "two fields", "four fields", "no newline"])
def test_a_file_that_is_not_plain_lines_is_read_the_old_way(
    mlflow_files: Path, tmp_path: Path, damage: str
) -> None:
    root = tmp_path / "mlruns"
    shutil.copytree(mlflow_files, root)
    victim = _metric_files(root)[3]
    text = victim.read_text()
    first, _, rest = text.partition("\n")
    changed = {
        "blank line": f"{first}\n\n{rest}",
        "two fields": f"{first.rsplit(' ', 1)[0]}\n{rest}",
        "four fields": f"{first} 7\n{rest}",
        "no newline": text.rstrip("\n"),
    }[damage]
    victim.write_text(changed)
    found = [("run", path.name, path) for path in _metric_files(root)]
    if damage == "no newline":
        assert filestore._joined(found) is not None  # a last line without '\n' is fine
    else:
        assert filestore._joined(found) is None
    _assert_same(root)  # warnings included


YAML_DOCS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(YAML_DOCS)
def test_libyaml_reads_what_the_pure_python_parser_reads(value: Any) -> None:
    text = yaml.safe_dump(value, allow_unicode=True)
    assert files.yaml_value(text) == (yaml.load(text, Loader=files._PureBoundedLoader), False)
