"""Hostile run names in chromium: `chart -o fig.html`, `report` and the widget run nothing.

A name that closes a script (``</script><img ... onerror>``) or is an image with an onerror
handler must show as literal text; the page fixture fails the test on any request off this
machine, any console error and any dialog; `window.__pwned` stays unset.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.helpers import WIDGET, Server, Watch, count, open_lab, wait_render

import rungroup as rg
from rungroup import cli

pytestmark = pytest.mark.e2e

NAMES = [
    '</script><img src=x onerror="window.__pwned=1">',
    "<img src=x onerror=window.__pwned=2>",
]


def hostile_store(root: Path) -> Path:
    store = root / "hostile-store"
    for index, name in enumerate(NAMES):
        with rg.init(dir=store, project="p", group=name, name=name) as run:
            for step in range(5):
                run.log({"loss": 1.0 / (step + 1 + index)})
    return store


def shown_as_text(labels: list[str]) -> None:
    """The chart's labels are the names as text (vega may shorten a long one with "…")."""
    assert len(labels) == len(NAMES)
    for label, name in zip(sorted(labels), sorted(NAMES), strict=True):
        assert len(label) > 12 and name.startswith(label.removesuffix("…"))


def nothing_ran(page: Any) -> None:
    assert page.evaluate("() => window.__pwned === undefined")
    assert count(page, "img") == 0


@pytest.mark.parametrize("command", ["chart", "report"])
def test_a_hostile_name_is_text_in_the_html_files(page: Any, tmp_path: Path, command: str) -> None:
    store = hostile_store(tmp_path)
    target = tmp_path / f"{command}.html"
    with contextlib.redirect_stderr(io.StringIO()):
        assert cli.main([command, str(store), "-o", str(target)]) == 0
    # set_content: no server and no file access; any request would be recorded and fail
    page.goto("about:blank")
    page.set_content(target.read_text(encoding="utf-8"), wait_until="load")
    page.wait_for_selector(".chart svg .mark-line path", timeout=30_000)
    nothing_ran(page)
    legend = page.locator(".chart svg .role-legend-label text").all_text_contents()
    shown_as_text(legend)
    if command == "report":
        cells = page.locator("table:not(.settings) tbody td:first-child").all_text_contents()
        assert sorted(cells) == sorted(NAMES)


def test_a_hostile_name_is_text_in_the_widget(page: Any, jupyter: Server, watch: Watch) -> None:
    store = hostile_store(jupyter.root)
    notebook = jupyter.write_notebook(
        "hostile_names.ipynb",
        [f"import rungroup as rg\nexplorer = rg.Explorer({str(store)!r})\nexplorer"],
    )
    open_lab(page, jupyter.url, notebook)
    wait_render(page, 0, timeout=90_000)
    page.locator(WIDGET).scroll_into_view_if_needed()
    nothing_ran(page)
    groups = page.eval_on_selector_all(
        f"{WIDGET} .rg-group-name", "els => els.map(e => e.textContent)"
    )
    assert sorted(groups) == sorted(NAMES)
    # hovering a group row hands its name to the chart as data (the hover signal)
    row = page.locator(f"{WIDGET} .rg-tr.rg-group").first
    row.hover()
    hovered = row.get_attribute("data-series")
    assert hovered in NAMES
    page.wait_for_function(
        "([sel, s]) => document.querySelector(sel).rungroupProbe.hover === s", arg=[WIDGET, hovered]
    )
    nothing_ran(page)
    assert watch.dialogs == []
