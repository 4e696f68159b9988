"""Notebooks are executed, so that none of them can rot."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "name", ["quickstart.ipynb", "cross_validation.ipynb", "distributed.ipynb"]
)
def test_notebook_runs_without_errors(
    name: str, demo_runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNGROUP_DEMO_DIR", str(demo_runs))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert EXPECTED[name] in text
    assert os.environ["RUNGROUP_DEMO_DIR"] == str(demo_runs)


#: Something each notebook must print, so that a notebook that silently shows nothing fails.
EXPECTED = {
    "quickstart.ipynb": "Runs(35 runs, 2 groups",
    "cross_validation.ipynb": "Runs(30 runs, 1 groups",
    "distributed.ipynb": "/ worker ┆ 2 ",
}


def test_the_executed_quickstart_as_html_shows_an_image_of_the_chart(
    demo_runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nbconvert cannot run a widget: the Explorer's output carries an image of its chart,
    which the HTML shows, and a summary; the widget view stays first for live front ends."""
    from nbconvert import HTMLExporter

    monkeypatch.setenv("RUNGROUP_DEMO_DIR", str(demo_runs))
    notebook = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    widget = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widget) == 1
    assert (
        widget[0].data["text/plain"].startswith("rungroup.Explorer: 35 runs in 2 groups by group")
    )
    # the output before the widget's: the image, for viewers without a widget manager
    before = outputs[outputs.index(widget[0]) - 1]
    assert 'class="rungroup-static"' in before.data["text/html"]
    assert before.data["image/png"] and before.data["text/plain"] == widget[0].data["text/plain"]
    html, _ = HTMLExporter().from_notebook_node(notebook)
    assert html.count('<div class="rungroup-static"><img alt="rungroup.Explorer: 35 runs') == 1
    assert html.count('src="data:image/png;base64,') >= 1
