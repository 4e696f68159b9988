"""The notebooks of the sources are executed, so that none of them can rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parents[3] / "notebooks"
NAMES = sorted(p.name for p in NOTEBOOKS.glob("source_*.ipynb"))

pytestmark = pytest.mark.slow


def test_every_source_has_a_notebook() -> None:
    assert NAMES == [
        "source_csv.ipynb",
        "source_frames.ipynb",
        "source_mlflow.ipynb",
        "source_tensorboard.ipynb",
        "source_wandb.ipynb",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_source_notebook_runs(name: str, tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "Runs(6 runs, 2 groups" in text
    assert not list(tmp_path.iterdir())  # the notebook wrote nothing where it ran
