"""One options vocabulary: every source takes `progress_bar=` and shares one threshold."""

from __future__ import annotations

from pathlib import Path

import pytest

import rungroup as rg
from rungroup.sources import runrecords

SOURCES = ["mlflow_sqlite", "mlflow_files", "tensorboard_logs", "wandb_dir", "lightning_csv"]


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    for seed in range(3):
        with rg.init(dir=tmp_path, project="p", config={"seed": seed}) as run:
            run.log({"loss": 1.0 / (seed + 1)}, step=0)
    return tmp_path


@pytest.mark.parametrize("source", [*SOURCES, "store_dir"])
def test_every_source_takes_progress_bar_and_the_shared_threshold(
    source: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = request.getfixturevalue(source)
    capsys.readouterr()
    # cache=False: a warm cache answers without the reader, so without its bar
    quiet = rg.load(path, progress_bar=False, cache=False)
    assert len(quiet) > 0 and capsys.readouterr().err == ""
    monkeypatch.setattr(runrecords, "PROGRESS_THRESHOLD", 0)
    shown = rg.load(path, cache=False)  # more runs than the (lowered) threshold: a bar
    bar = capsys.readouterr().err
    # MLflow SQLite is read in one query per table: nothing to count run by run
    assert ("%|" in bar) is (source != "mlflow_sqlite")
    assert shown.ids == quiet.ids
    rg.load(path, progress_bar=False, cache=False)
    assert capsys.readouterr().err == ""
