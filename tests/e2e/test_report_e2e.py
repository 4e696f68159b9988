"""`rungroup report` opened in headless chromium with every request off this page blocked."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

import rungroup as rg
from rungroup import cli

pytestmark = pytest.mark.e2e

HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_GROUP = "<script>alert('group')</script>"


def write_report(source: Path, target: Path, *options: str) -> None:
    with contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["report", str(source), "-o", str(target), *options]) == 0


def open_report(page: Any, path: Path) -> None:
    # set_content: the report must work with no server and no file access at all; a fresh
    # document first, so that a second report does not share the first one's scripts
    page.goto("about:blank")
    page.set_content(path.read_text(encoding="utf-8"), wait_until="load")
    page.wait_for_selector(".chart svg .role-title-text", timeout=30_000)


def test_the_report_draws_one_panel_per_metric_and_the_group_table(
    page: Any, demo_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "report.html"
    write_report(demo_dir, target, "--group-by", "config.lr", "--band", "ci")
    open_report(page, target)
    runs = rg.load(demo_dir)
    titles = page.locator(".chart svg .role-title-text").all_text_contents()
    assert titles == runs.metrics
    summary = rg.summarize(runs, group_by="config.lr")
    rows = page.locator("table:not(.settings) tbody tr")
    assert rows.count() == summary.height
    assert rows.locator("td:first-child").all_text_contents() == summary["series"].to_list()
    settings = page.locator("table.settings").inner_text()
    assert "group_by *" in settings and "config.lr" in settings and "band *" in settings
    # every group draws a line in every panel it has points in
    lines = page.locator(".chart svg .mark-line path").count()
    assert lines >= summary.height * len(titles) - 2  # the eval-only group has no train curves


def test_run_provided_text_is_shown_as_text_and_never_runs(page: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    for seed in range(2):
        with rg.init(dir=store, project="p", group=HOSTILE_GROUP, name=HOSTILE_NAME) as run:
            for step in range(5):
                run.log({"loss": 1.0 / (step + 1 + seed)})
    target = tmp_path / "report.html"
    write_report(store, target)
    open_report(page, target)
    cell = page.locator("table:not(.settings) tbody tr td").first
    assert cell.inner_text() == HOSTILE_GROUP
    assert page.locator("img[src=x]").count() == 0
    # no dialog opened: the page fixture fails the test if one did

    target_runs = tmp_path / "runs.html"
    write_report(store, target_runs, "--no-grouping")
    open_report(page, target_runs)
    names = page.locator("table:not(.settings) tbody tr td:first-child").all_text_contents()
    # two runs share the name: each label adds the run id to tell them apart
    assert len(names) == 2 and all(n.startswith(HOSTILE_NAME + " (") for n in names)
