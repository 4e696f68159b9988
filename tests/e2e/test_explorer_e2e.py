"""rungroup.Explorer in real JupyterLab 4 and Notebook 7, driven by Playwright with chromium.

Each step is checked twice: in the browser (lines and bands in the Vega view, table rows) and
in the kernel (the widget's traits and `aggregated`).
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from tests.e2e.helpers import (
    ARTIFACTS,
    WIDGET,
    Kernel,
    Server,
    Watch,
    act,
    chart_counts,
    count,
    kernel_for,
    open_lab,
    open_notebook7,
    set_theme,
    wait_render,
)

from rungroup.export import read_recipe

pytestmark = pytest.mark.e2e

XSS = "<img src=x onerror=alert(1)>"


def series_count(kernel: Kernel, layer: str | None = None) -> int:
    frame = "explorer.aggregated"
    if layer is not None:
        frame = f"{frame}.filter(pl.col('layer') == {layer!r})"
    key = "['run', 'metric']" if layer == "run" else "['series', 'metric']"
    return int(kernel.eval(f"{frame}.select({key}).n_unique()"))


def check_chart_matches_python(page: Any, kernel: Kernel) -> tuple[int, int]:
    lines, bands = chart_counts(page)
    expected = series_count(kernel)
    assert lines == expected, f"{lines} lines drawn, {expected} series x metrics in Python"
    # the rows the Vega view holds (updated in place from one grouping to the next) are the
    # frame's: as many, and the same values (float32 on the wire)
    held = page.eval_on_selector(WIDGET, "el => [el.dataset.viewRows, el.dataset.viewLineSum]")
    assert int(held[0]) == kernel.eval("explorer.aggregated.height")
    python_sum = kernel.eval(
        "float(explorer.aggregated.select(pl.col('line').cast(pl.Float32).cast(pl.Float64))"
        ".filter(pl.col('line').is_finite())['line'].sum())"
    )
    assert float(held[1]) == pytest.approx(python_sum, rel=1e-6, abs=1e-6)
    return lines, bands


def table_total(page: Any) -> int:
    """Rows of the runs table (all of them, not only those in the DOM)."""
    return int(page.eval_on_selector(WIDGET, "el => el.dataset.total"))


def test_quickstart_explorer_in_jupyterlab(page: Any, jupyter: Server, watch: Watch) -> None:
    open_lab(page, jupyter.url, "quickstart.ipynb", theme="JupyterLab Light")
    page.wait_for_selector(f"{WIDGET}[data-renders]", timeout=90_000)
    wait_render(page, 0)
    kernel = kernel_for(jupyter, "quickstart.ipynb")
    try:
        page.locator(WIDGET).scroll_into_view_if_needed()
        # grouped by group: the CV group and the distributed group
        groups = kernel.eval("explorer.aggregated['series'].n_unique()")
        assert groups == 2
        assert count(page, ".rg-tr.rg-group") == 2
        lines, bands = check_chart_matches_python(page, kernel)
        assert bands == lines  # std band by default, one per line

        # grouping off: one line per run
        act(page, lambda: page.click(f"{WIDGET} .rg-group-toggle"))
        assert kernel.eval("explorer.grouping") is False
        n_runs = kernel.eval("len(explorer.runs)")
        assert table_total(page) == n_runs
        assert count(page, ".rg-tr.rg-group") == 0
        assert count(page, ".rg-tr.rg-run") >= min(n_runs, 10)
        check_chart_matches_python(page, kernel)
        act(page, lambda: page.click(f"{WIDGET} .rg-group-toggle"))
        assert kernel.eval("explorer.grouping") is True

        # one level: by learning rate (one data request for the change, no spec: the Vega view
        # is kept and its rows updated)
        requests = int(page.eval_on_selector(WIDGET, "el => el.dataset.requests"))
        embedded = int(page.eval_on_selector(WIDGET, "el => el.dataset.embedded"))
        act(page, lambda: page.select_option(f"{WIDGET} select.rg-group-by >> nth=0", "config.lr"))
        assert kernel.eval("explorer.group_by") == ["config.lr"]
        assert int(page.eval_on_selector(WIDGET, "el => el.dataset.requests")) == requests + 1
        assert int(page.eval_on_selector(WIDGET, "el => el.dataset.embedded")) == embedded
        lr_groups = kernel.eval("explorer.runs.runs['config.lr'].n_unique()")
        assert count(page, ".rg-tr.rg-group") == lr_groups
        check_chart_matches_python(page, kernel)

        # nested: learning rate, then seed
        act(page, lambda: page.click(f"{WIDGET} .rg-add-level"))
        second_level = f"{WIDGET} select.rg-group-by >> nth=1"
        act(page, lambda: page.select_option(second_level, "config.seed"))
        assert kernel.eval("explorer.group_by") == ["config.lr", "config.seed"]
        nested = kernel.eval("explorer.aggregated['series'].n_unique()")
        assert nested > lr_groups
        assert count(page, ".rg-tr.rg-group") == nested
        check_chart_matches_python(page, kernel)
        act(page, lambda: page.click(f"{WIDGET} .rg-remove-level >> nth=1"))
        assert kernel.eval("explorer.group_by") == ["config.lr"]

        # sort by a column (click its header twice: descending), pick the columns
        header = page.locator(f"{WIDGET} .rg-th[data-column='m:val_acc']")
        act(page, lambda: header.click())
        act(page, lambda: header.click())
        assert kernel.eval("explorer.sort") == ["m:val_acc", "desc"]
        means = kernel.eval(
            "explorer.runs.runs.group_by('config.lr').agg(pl.col('summary.val_acc').mean())"
            ".sort('summary.val_acc', descending=True)['config.lr'].cast(pl.String).to_list()"
        )
        shown = page.eval_on_selector_all(
            f"{WIDGET} .rg-tr.rg-group", "els => els.map(e => e.dataset.key)"
        )
        assert shown[0] == means[0]
        before_columns = count(page, ".rg-th")
        page.click(f"{WIDGET} .rg-columns-button")
        box = page.locator(f"{WIDGET} .rg-column-picker label", has_text="train_loss")
        act(page, lambda: box.locator("input").uncheck())
        assert count(page, ".rg-th") == before_columns - 1
        assert "m:train_loss" not in kernel.eval("explorer.table_columns")
        page.mouse.click(5, 5)  # a click elsewhere closes the picker
        assert page.locator(f"{WIDGET} .rg-column-picker").is_hidden()

        # line and band from the settings panel
        page.click(f"{WIDGET} .rg-settings-button")
        act(page, lambda: page.select_option(f"{WIDGET} select.rg-line", "median"))
        act(page, lambda: page.select_option(f"{WIDGET} select.rg-band", "minmax"))
        assert kernel.eval("(explorer.line, explorer.band)") == ("median", "minmax")
        assert kernel.eval("explorer.view.line") == "median"
        assert kernel.eval(
            "bool((explorer.aggregated['line'] == explorer.aggregated['median']).all())"
        )
        lines, bands = check_chart_matches_python(page, kernel)
        assert bands == lines
        act(page, lambda: page.select_option(f"{WIDGET} select.rg-band", "quantile"))
        assert page.is_visible(f"{WIDGET} .rg-quantiles")
        low = page.locator(f"{WIDGET} input.rg-q-low")
        act(page, lambda: low.fill("10") or low.press("Tab"))
        assert kernel.eval("explorer.quantiles") == [0.1, 0.75]
        # an invalid value typed in the widget is refused, and the reason shown in the widget
        low.fill("90")
        low.press("Tab")
        page.wait_for_selector(f"{WIDGET} .rg-error:not([hidden])")
        assert "quantiles" in page.inner_text(f"{WIDGET} .rg-error")
        assert kernel.eval("explorer.quantiles") == [0.1, 0.75]
        assert "quantiles" in kernel.eval("explorer.error")
        page.wait_for_function(
            "(sel) => document.querySelector(sel).value === '10'", arg=f"{WIDGET} input.rg-q-low"
        )

        # smoothing: the strength field says what it means for the method and the x axis
        act(page, lambda: page.select_option(f"{WIDGET} select.rg-smoothing", "gaussian"))
        assert kernel.eval("(explorer.smoothing, explorer.smoothing_param)") == ("gaussian", 2)
        strength = f"{WIDGET} input.rg-strength"
        assert page.get_attribute(strength, "title") == "gaussian sigma in steps"
        check_chart_matches_python(page, kernel)
        act(page, lambda: page.select_option(f"{WIDGET} select.rg-smoothing", "ema"))
        assert "EMA weight" in (page.get_attribute(strength, "title") or "")
        act(page, lambda: page.select_option(f"{WIDGET} select.rg-smoothing", "none"))

        # a change from Python shows up in the browser
        act(page, lambda: kernel.run("explorer.band = 'stderr'"))
        assert page.eval_on_selector(f"{WIDGET} select.rg-band", "el => el.value") == "stderr"

        # hide one run: expand the first group and click its first run's eye
        act(page, lambda: page.click(f"{WIDGET} .rg-tr.rg-group .rg-expand >> nth=0"))
        run_row = page.locator(f"{WIDGET} .rg-tr.rg-run").first
        run_id = run_row.get_attribute("data-key")
        series = run_row.get_attribute("data-series")
        n_before = kernel.eval(
            f"int(explorer.aggregated.filter(pl.col('series') == {series!r})['n'].max())"
        )
        act(page, lambda: run_row.locator(".rg-eye").click())
        assert kernel.eval("explorer.hidden") == [run_id]
        assert run_id not in kernel.eval("explorer.selected_runs")
        n_after = kernel.eval(
            f"int(explorer.aggregated.filter(pl.col('series') == {series!r})['n'].max())"
        )
        assert n_after == n_before - 1
        assert page.locator(f"{WIDGET} .rg-tr.rg-run.rg-hidden").count() == 1

        # the group page: its runs under its line and band
        name = page.locator(f"{WIDGET} .rg-group-name").first
        label = name.inner_text()
        act(page, lambda: name.click())
        assert kernel.eval("explorer.focus") == label
        assert page.is_visible(f"{WIDGET} .rg-breadcrumb")
        assert page.inner_text(f"{WIDGET} .rg-crumb-name") == label
        runs_drawn = series_count(kernel, "run")
        group_drawn = series_count(kernel, "group")
        lines, bands = chart_counts(page)
        assert lines == runs_drawn + group_drawn
        assert bands == group_drawn
        members = kernel.eval(
            f"explorer.runs.runs.filter(pl.col('config.lr').cast(pl.String) == {label!r}).height"
        )
        assert table_total(page) == members
        # hovering a run's row brings its thin line forward
        run_row = page.locator(f"{WIDGET} .rg-tr.rg-run").nth(1)
        run_label = run_row.get_attribute("data-series")
        assert run_label and run_label != label
        run_row.hover()
        page.wait_for_function(
            "([sel, s]) => document.querySelector(sel).dataset.hover === s",
            arg=[WIDGET, run_label],
        )
        page.locator(WIDGET).screenshot(path=str(ARTIFACTS / "explorer-group-page.png"))
        page.mouse.move(0, 0)
        act(page, lambda: page.click(f"{WIDGET} .rg-back"))
        assert kernel.eval("explorer.focus") == ""

        # hover a table row: its line is emphasised (the hover signal is set)
        page.hover(f"{WIDGET} .rg-tr.rg-group >> nth=0")
        hovered = page.locator(f"{WIDGET} .rg-tr.rg-group").first.get_attribute("data-series")
        page.wait_for_function(
            "([sel, s]) => document.querySelector(sel).classList.contains('rg-highlight')",
            arg=[f"{WIDGET} .rg-tr.rg-group", hovered],
        )
        # ... and the chart's hover signal names its series (its line and band stay opaque)
        page.wait_for_function(
            "([sel, s]) => document.querySelector(sel).dataset.hover === s",
            arg=[WIDGET, hovered],
        )
        # the tooltip points are laid out for that series alone, every point of it
        points = kernel.eval(f"explorer.aggregated.filter(pl.col('series') == {hovered!r}).height")
        assert int(page.eval_on_selector(WIDGET, "el => el.dataset.tips")) == points > 0

        # export the aggregated frame as CSV, downloaded by the browser
        page.click(f"{WIDGET} .rg-export-button")
        with page.expect_download() as info:
            page.click(f"{WIDGET} [data-export=csv]")
        download = info.value
        target = ARTIFACTS / "explorer-export.csv"
        download.save_as(str(target))
        text = target.read_text()
        header = text.splitlines()[0].split(",")
        assert "series" in header and "line" in header
        assert len(text.strip().splitlines()) - 1 == kernel.eval("explorer.aggregated.height")

        # Parquet carries its recipe; the chart itself as PNG
        page.click(f"{WIDGET} .rg-export-button")
        with page.expect_download() as info:
            page.click(f"{WIDGET} [data-export=parquet]")
        parquet = ARTIFACTS / "explorer-export.parquet"
        info.value.save_as(str(parquet))
        recipe = read_recipe(parquet)
        assert recipe["rungroup_view"]["group_by"] == kernel.eval("explorer.group_by")
        page.click(f"{WIDGET} .rg-export-button")
        with page.expect_download() as info:
            page.click(f"{WIDGET} [data-export=png]")
        png = ARTIFACTS / "explorer-chart.png"
        info.value.save_as(str(png))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # light and dark themes
        page.mouse.move(0, 0)
        page.locator(WIDGET).screenshot(path=str(ARTIFACTS / "explorer-light.png"))
        ink = "el => getComputedStyle(el).color"
        light_ink = page.eval_on_selector(WIDGET, ink)
        embedded = int(page.eval_on_selector(WIDGET, "el => el.dataset.embedded"))
        before = int(page.eval_on_selector(WIDGET, "el => el.dataset.renders"))
        set_theme(page, "JupyterLab Dark")
        wait_render(page, before)
        page.locator(WIDGET).screenshot(path=str(ARTIFACTS / "explorer-dark.png"))
        assert page.eval_on_selector(WIDGET, ink) != light_ink
        # the chart was embedded again, with the dark theme's colours
        assert int(page.eval_on_selector(WIDGET, "el => el.dataset.embedded")) == embedded + 1
        set_theme(page, "JupyterLab Light")
    finally:
        kernel.close()
    assert watch.blocked == []


def test_run_names_are_text(page: Any, jupyter: Server, watch: Watch) -> None:
    notebook = jupyter.write_notebook(
        "xss.ipynb",
        [
            "import polars as pl\nimport rungroup as rg\n"
            f"names = [{XSS!r}, 'plain', '<b>bold</b>']\n"
            "runs = rg.Runs(\n"
            "    pl.DataFrame({'id': ['a', 'b', 'c'], 'name': names, 'group': names}),\n"
            "    pl.DataFrame({'run_id': ['a', 'b', 'c'] * 3, 'metric': ['loss'] * 9,\n"
            "                  'step': [0, 0, 0, 1, 1, 1, 2, 2, 2],\n"
            "                  'value': [3.0, 2.0, 1.0, 2.5, 1.5, 0.5, 2.0, 1.0, 0.2]}),\n"
            ")\n"
            "explorer = rg.Explorer(runs, grouping=False)\nexplorer",
        ],
    )
    open_lab(page, jupyter.url, notebook)
    page.wait_for_selector(f"{WIDGET}[data-renders]", timeout=90_000)
    wait_render(page, 0)
    names = page.eval_on_selector_all(
        f"{WIDGET} .rg-run-name", "els => els.map(e => e.textContent)"
    )
    assert XSS in names and "<b>bold</b>" in names
    assert count(page, "img") == 0
    assert count(page, "b") == 0
    # grouped by group, the same text is a group row and a chart label
    act(page, lambda: page.click(f"{WIDGET} .rg-group-toggle"))
    groups = page.eval_on_selector_all(
        f"{WIDGET} .rg-group-name", "els => els.map(e => e.textContent)"
    )
    assert XSS in groups
    assert count(page, "img") == 0
    assert watch.dialogs == []


def test_quickstart_in_notebook7(page: Any, jupyter: Server, watch: Watch) -> None:
    # Notebook 7.6 throws two errors of its own while it starts (a settings schema and the
    # file browser command), with or without the widget; only errors from its core bundle
    # are tolerated, and listed in the report below.
    watch.foreign.append("/static/notebook/notebook_core.")
    shutil.copy(jupyter.root / "quickstart.ipynb", jupyter.root / "quickstart-nb7.ipynb")
    open_notebook7(page, jupyter.url, "quickstart-nb7.ipynb")
    page.wait_for_selector(f"{WIDGET}[data-renders]", timeout=90_000)
    wait_render(page, 0)
    kernel = kernel_for(jupyter, "quickstart-nb7.ipynb")
    try:
        check_chart_matches_python(page, kernel)
        act(page, lambda: page.click(f"{WIDGET} .rg-group-toggle"))
        assert kernel.eval("explorer.grouping") is False
        check_chart_matches_python(page, kernel)
        page.locator(WIDGET).screenshot(path=str(ARTIFACTS / "explorer-notebook7.png"))
    finally:
        kernel.close()
    (ARTIFACTS / "notebook7-own-errors.txt").write_text("\n".join(watch.ignored) + "\n")
