"""marimo: `marimo run` of an app wrapping the Explorer in `mo.ui.anywidget`, in chromium.

The widget draws its table and charts from the kernel there too (its rows and series travel
as custom messages), and a change made in the widget reaches a reactive cell.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.helpers import ARTIFACTS, WIDGET

APP = """
import marimo

app = marimo.App()


@app.cell
def _():
    import os

    import marimo as mo

    import rungroup as rg

    runs = rg.load(os.environ["RUNGROUP_DEMO_DIR"])
    explorer = mo.ui.anywidget(rg.Explorer(runs, group_by=["config.lr"]))
    explorer
    return explorer, mo


@app.cell
def _(explorer, mo):
    mo.md(f"grouped by: {', '.join(explorer.value['group_by']) or 'nothing'}")
    return


if __name__ == "__main__":
    app.run()
"""


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def marimo_app(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("marimo")
    (folder / "app.py").write_text(APP)
    port = _free_port()
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marimo",
            "run",
            "app.py",
            "--headless",
            "--no-token",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=folder,
        env={**os.environ, "RUNGROUP_DEMO_DIR": str(demo_dir)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"marimo did not start: {(folder / 'server.log').read_text()}")
            time.sleep(0.5)
    yield url
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def _probe_when(widget: Any, ready: Any, timeout: float = 60.0) -> dict[str, Any]:
    """The widget's probe once a finished repaint satisfies `ready` (marimo draws widgets in
    a shadow root: read through Playwright's locator, which pierces it)."""
    deadline = time.monotonic() + timeout
    probe = None
    while time.monotonic() < deadline:
        probe = widget.evaluate(
            "el => el.rungroupProbe && !el.classList.contains('rg-busy')"
            " ? {...el.rungroupProbe} : null"
        )
        if probe and probe["renders"] > 0 and ready(probe):
            return dict(probe)
        time.sleep(0.2)
    pytest.fail(f"the widget did not draw what was expected within {timeout} s: {probe}")


def test_the_explorer_runs_in_marimo_and_a_reactive_cell_sees_its_changes(
    page: Any, marimo_app: str
) -> None:
    page.goto(marimo_app)
    page.wait_for_selector("text=grouped by: config.lr", timeout=90_000)
    widget = page.locator(WIDGET)
    widget.wait_for(timeout=60_000)
    drawn = _probe_when(widget, lambda probe: probe["lines"] == 4 * 4)
    assert drawn["misplaced"] == 0
    assert drawn["lines"] == 4 * 4 and drawn["bands"] > 0  # 4 metrics x 4 learning rates
    assert widget.locator(".rg-table").count() == 1

    widget.locator(".rg-group-by").first.select_option("config.seed")
    page.wait_for_selector("text=grouped by: config.seed", timeout=60_000)
    # seeds 0 and 1 of the cross-validation, none for the distributed job: 3 lines a panel
    regrouped = _probe_when(widget, lambda probe: probe["lines"] == 4 * 3)
    assert regrouped["misplaced"] == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "marimo.png"), full_page=True)
