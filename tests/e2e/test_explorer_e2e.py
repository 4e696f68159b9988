"""rungroup.Explorer in real JupyterLab 4 and Notebook 7, driven by Playwright with chromium.

One test per feature, on one quickstart notebook opened once for the module (the `lab`
fixture); each test starts from the widget's first state. Each step is checked twice: in the
browser (lines and bands in the Vega view, table rows) and in the kernel (the widget's traits
and `aggregated`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image
from tests.e2e.helpers import (
    ARTIFACTS,
    WIDGET,
    Kernel,
    Server,
    Watch,
    act,
    assert_clean,
    chart_counts,
    count,
    kernel_for,
    open_lab,
    open_notebook7,
    probe,
    set_theme,
    wait_render,
    watched_page,
)

from rungroup.export import read_recipe

pytestmark = pytest.mark.e2e

XSS = "<img src=x onerror=alert(1)>"

#: The traits a test may change; each test starts with them as the notebook made them.
STATE = (
    "grouping",
    "group_by",
    "reverse",
    "line",
    "band",
    "quantiles",
    "smoothing",
    "smoothing_param",
    "hidden",
    "focus",
    "sort",
    "expanded",
    "table_columns",
)


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
    held = probe(page)
    assert held["viewRows"] == kernel.eval("explorer.aggregated.height")
    python_sum = kernel.eval(
        "float(explorer.aggregated.select(pl.col('line').cast(pl.Float32).cast(pl.Float64))"
        ".filter(pl.col('line').is_finite())['line'].sum())"
    )
    assert held["viewLineSum"] == pytest.approx(python_sum, rel=1e-6, abs=1e-6)
    return lines, bands


def table_total(page: Any) -> int:
    """Rows of the runs table (all of them, not only those in the DOM)."""
    return int(probe(page)["total"])


@dataclass
class Lab:
    page: Any
    kernel: Kernel
    watch: Watch
    initial: dict[str, Any]


@pytest.fixture(scope="module")
def lab(browser: Any, jupyter: Server) -> Iterator[Lab]:
    """The quickstart notebook open in JupyterLab (light theme), its kernel, its first state."""
    watch = Watch()
    with watched_page(browser, watch, "explorer-lab") as page:
        open_lab(page, jupyter.url, "quickstart.ipynb", theme="JupyterLab Light")
        wait_render(page, 0, timeout=90_000)
        kernel = kernel_for(jupyter, "quickstart.ipynb")
        try:
            initial = {name: kernel.eval(f"explorer.{name}") for name in STATE}
            yield Lab(page, kernel, watch, initial)
        finally:
            kernel.close()


@pytest.fixture
def quickstart(lab: Lab) -> Iterator[tuple[Any, Kernel]]:
    """The lab back in its first state (menus and settings closed); the page stays clean."""
    page, kernel = lab.page, lab.kernel
    page.mouse.move(0, 0)
    page.mouse.click(5, 5)  # closes any open menu
    if page.is_visible(f"{WIDGET} .rg-settings"):
        page.click(f"{WIDGET} .rg-settings-button")
    current = {name: kernel.eval(f"explorer.{name}") for name in STATE}
    changed = {name: value for name, value in lab.initial.items() if current[name] != value}
    if kernel.eval("explorer.error"):
        kernel.run("explorer.error = ''")
    if changed:
        code = "\n".join(f"    explorer.{name} = {value!r}" for name, value in changed.items())
        act(page, lambda: kernel.run(f"with explorer.hold_sync():\n{code}"))
    page.locator(WIDGET).scroll_into_view_if_needed()
    yield page, kernel
    try:
        assert_clean(lab.watch)
    finally:
        lab.watch.errors.clear()
        lab.watch.blocked.clear()
        lab.watch.dialogs.clear()


def test_grouped_by_group_the_chart_and_table_match_python(quickstart: Any) -> None:
    page, kernel = quickstart
    # grouped by group: the CV group and the distributed group
    assert kernel.eval("explorer.aggregated['series'].n_unique()") == 2
    assert count(page, ".rg-tr.rg-group") == 2, "the table shows the two groups"
    lines, bands = check_chart_matches_python(page, kernel)
    assert bands == lines, "the default std band is drawn once per line"
    assert page.inner_text(f"{WIDGET} .rg-status").startswith(
        f"{kernel.eval('len(explorer.runs)')} runs · 2 groups"
    )


def test_group_toggle_off_draws_one_line_per_run(quickstart: Any) -> None:
    page, kernel = quickstart
    act(page, lambda: page.click(f"{WIDGET} .rg-group-toggle"))
    assert kernel.eval("explorer.grouping") is False
    assert page.get_attribute(f"{WIDGET} .rg-group-toggle", "aria-pressed") == "false"
    n_runs = kernel.eval("len(explorer.runs)")
    assert table_total(page) == n_runs, "one table row per run"
    assert count(page, ".rg-tr.rg-group") == 0
    assert count(page, ".rg-tr.rg-run") >= min(n_runs, 10)
    check_chart_matches_python(page, kernel)


def test_changing_the_group_by_level_feeds_the_same_vega_view(quickstart: Any) -> None:
    page, kernel = quickstart
    # one data request for the change, no spec: the Vega view is kept and its rows updated
    before = probe(page)
    act(page, lambda: page.select_option(f"{WIDGET} select.rg-group-by >> nth=0", "config.lr"))
    assert kernel.eval("explorer.group_by") == ["config.lr"]
    after = probe(page)
    assert after["requests"] == before["requests"] + 1, "one request per change"
    assert after["embedded"] == before["embedded"], "the Vega view was embedded again"
    lr_groups = kernel.eval("explorer.runs.runs['config.lr'].n_unique()")
    assert count(page, ".rg-tr.rg-group") == lr_groups
    check_chart_matches_python(page, kernel)


def test_nested_group_by_levels_add_and_remove(quickstart: Any) -> None:
    page, kernel = quickstart
    act(page, lambda: page.select_option(f"{WIDGET} select.rg-group-by >> nth=0", "config.lr"))
    lr_groups = kernel.eval("explorer.aggregated['series'].n_unique()")
    # "+" proposes the key that best splits the lr groups
    act(page, lambda: page.click(f"{WIDGET} .rg-add-level"))
    assert kernel.eval("explorer.group_by") == ["config.lr", "config.seed"]
    nested = kernel.eval("explorer.aggregated['series'].n_unique()")
    assert nested > lr_groups
    # the table is a tree: a row per lr, each opening onto its (lr, seed) groups
    assert count(page, ".rg-tr.rg-branch") == lr_groups
    branches = kernel.eval(
        "explorer.aggregated['series'].cast(pl.String).str.split(' / ')"
        ".list.first().unique().to_list()"
    )
    act(page, lambda: kernel.run(f"explorer.expanded = {list(branches)!r}"))
    assert count(page, ".rg-tr.rg-group") == nested
    check_chart_matches_python(page, kernel)
    act(page, lambda: page.click(f"{WIDGET} .rg-remove-level >> nth=1"))
    assert kernel.eval("explorer.group_by") == ["config.lr"]
    assert count(page, "select.rg-group-by") == 1


def test_clicking_a_column_header_twice_sorts_descending(quickstart: Any) -> None:
    page, kernel = quickstart
    act(page, lambda: page.select_option(f"{WIDGET} select.rg-group-by >> nth=0", "config.lr"))
    header = page.locator(f"{WIDGET} .rg-th[data-column='m:val_acc']")
    act(page, lambda: header.click())
    act(page, lambda: header.click())
    assert kernel.eval("explorer.sort") == ["m:val_acc", "desc"]
    assert header.inner_text().endswith("▼")
    means = kernel.eval(
        "explorer.runs.runs.group_by('config.lr').agg(pl.col('summary.val_acc').mean())"
        ".sort('summary.val_acc', descending=True)['config.lr'].cast(pl.String).to_list()"
    )
    shown = page.eval_on_selector_all(
        f"{WIDGET} .rg-tr.rg-group", "els => els.map(e => e.dataset.key)"
    )
    assert shown[0] == means[0], "the group with the best mean val_acc comes first"


def test_the_column_picker_hides_a_column_and_closes_on_a_click_elsewhere(
    quickstart: Any,
) -> None:
    page, kernel = quickstart
    before_columns = count(page, ".rg-th")
    page.click(f"{WIDGET} .rg-columns-button")
    box = page.locator(f"{WIDGET} .rg-column-picker label", has_text="train_loss")
    act(page, lambda: box.locator("input").uncheck())
    assert count(page, ".rg-th") == before_columns - 1
    assert "m:train_loss" not in kernel.eval("explorer.table_columns")
    page.mouse.click(5, 5)
    assert page.locator(f"{WIDGET} .rg-column-picker").is_hidden()


def test_line_and_band_from_the_settings_panel(quickstart: Any) -> None:
    page, kernel = quickstart
    page.click(f"{WIDGET} .rg-settings-button")
    # the choices and their labels are Python's
    labels = page.eval_on_selector_all(
        f"{WIDGET} select.rg-band option", "els => els.map(e => [e.value, e.textContent])"
    )
    expected = kernel.eval("[[c['value'], c['label']] for c in explorer.info['choices']['band']]")
    assert labels == expected
    act(page, lambda: page.select_option(f"{WIDGET} select.rg-line", "median"))
    act(page, lambda: page.select_option(f"{WIDGET} select.rg-band", "minmax"))
    assert kernel.eval("(explorer.line, explorer.band)") == ("median", "minmax")
    assert kernel.eval("explorer.view.line") == "median"
    assert kernel.eval("bool((explorer.aggregated['line'] == explorer.aggregated['median']).all())")
    lines, bands = check_chart_matches_python(page, kernel)
    assert bands == lines


def test_quantile_band_takes_percentiles_and_refuses_an_invalid_one(quickstart: Any) -> None:
    page, kernel = quickstart
    page.click(f"{WIDGET} .rg-settings-button")
    assert page.is_hidden(f"{WIDGET} .rg-quantiles"), "percentiles shown for the std band"
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


def test_smoothing_sets_a_strength_and_says_what_it_means(quickstart: Any) -> None:
    page, kernel = quickstart
    page.click(f"{WIDGET} .rg-settings-button")
    strength = f"{WIDGET} input.rg-strength"
    assert page.is_hidden(strength), "a strength shown with smoothing off"
    act(page, lambda: page.select_option(f"{WIDGET} select.rg-smoothing", "gaussian"))
    assert kernel.eval("(explorer.smoothing, explorer.smoothing_param)") == ("gaussian", 2)
    # the strength field says what it means for the method and the x axis
    assert page.get_attribute(strength, "title") == "gaussian sigma in steps"
    check_chart_matches_python(page, kernel)
    act(page, lambda: page.select_option(f"{WIDGET} select.rg-smoothing", "ema"))
    assert kernel.eval("explorer.smoothing_param") == 0.6
    assert "EMA weight" in (page.get_attribute(strength, "title") or "")
    assert page.get_attribute(strength, "max") == "0.999"


def test_a_change_from_python_shows_up_in_the_browser(quickstart: Any) -> None:
    page, kernel = quickstart
    act(page, lambda: kernel.run("explorer.band = 'stderr'"))
    assert page.eval_on_selector(f"{WIDGET} select.rg-band", "el => el.value") == "stderr"
    assert chart_counts(page)[1] > 0, "no band drawn for stderr"


def test_hiding_a_run_leaves_it_out_of_its_group(quickstart: Any) -> None:
    page, kernel = quickstart
    act(page, lambda: page.click(f"{WIDGET} .rg-tr.rg-group .rg-expand >> nth=0"))
    run_row = page.locator(f"{WIDGET} .rg-tr.rg-run").first
    run_id = run_row.get_attribute("data-key")
    series = run_row.get_attribute("data-series")
    runs_in = f"int(explorer.aggregated.filter(pl.col('series') == {series!r})['n'].max())"
    n_before = kernel.eval(runs_in)
    act(page, lambda: run_row.locator(".rg-eye").click())
    assert kernel.eval("explorer.hidden") == [run_id]
    assert run_id not in kernel.eval("explorer.selected_runs")
    assert kernel.eval(runs_in) == n_before - 1, "the hidden run still counts in its group"
    assert page.locator(f"{WIDGET} .rg-tr.rg-run.rg-hidden").count() == 1


def test_the_group_page_shows_its_runs_under_its_line(quickstart: Any) -> None:
    page, kernel = quickstart
    act(page, lambda: page.select_option(f"{WIDGET} select.rg-group-by >> nth=0", "config.lr"))
    name = page.locator(f"{WIDGET} .rg-group-name").first
    label = name.inner_text()
    act(page, lambda: name.click())
    assert kernel.eval("explorer.focus") == label
    assert page.is_visible(f"{WIDGET} .rg-breadcrumb")
    assert page.inner_text(f"{WIDGET} .rg-crumb-name") == label
    runs_drawn = series_count(kernel, "run")
    group_drawn = series_count(kernel, "group")
    lines, bands = chart_counts(page)
    assert lines == runs_drawn + group_drawn, "each run's thin line and the group's line"
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
        "([sel, s]) => document.querySelector(sel).rungroupProbe.hover === s",
        arg=[WIDGET, run_label],
    )
    assert probe(page)["emphasised"] > 0, "the hovered run's thin line is drawn over the others"
    page.locator(WIDGET).screenshot(path=str(ARTIFACTS / "explorer-group-page.png"))
    page.mouse.move(0, 0)
    act(page, lambda: page.click(f"{WIDGET} .rg-back"))
    assert kernel.eval("explorer.focus") == ""
    assert page.is_hidden(f"{WIDGET} .rg-breadcrumb")


def test_hovering_a_table_row_emphasises_its_series(quickstart: Any) -> None:
    page, kernel = quickstart
    page.hover(f"{WIDGET} .rg-tr.rg-group >> nth=0")
    hovered = page.locator(f"{WIDGET} .rg-tr.rg-group").first.get_attribute("data-series")
    page.wait_for_function(
        "(sel) => document.querySelector(sel).classList.contains('rg-highlight')",
        arg=f"{WIDGET} .rg-tr.rg-group",
    )
    # the chart brings its series forward: drawn again over the others, which are washed back
    page.wait_for_function(
        "([sel, s]) => document.querySelector(sel).rungroupProbe.hover === s",
        arg=[WIDGET, hovered],
    )
    state = probe(page)
    drawn = kernel.eval(f"explorer.aggregated.filter(pl.col('series') == {hovered!r}).height")
    assert 0 < state["emphasised"] <= drawn, "the hovered series' line is drawn over the view"
    assert page.is_visible(f"{WIDGET} canvas.rg-emphasis")
    # the crosshair's tooltip is the chart's own: hovering the table lists nothing
    assert state["tips"] == 0
    page.mouse.move(0, 0)
    page.wait_for_function(
        "(sel) => document.querySelector(sel).rungroupProbe.emphasised === 0", arg=WIDGET
    )
    assert page.is_hidden(f"{WIDGET} canvas.rg-emphasis")


def download(page: Any, kind: str, name: str) -> Any:
    page.click(f"{WIDGET} .rg-export-button")
    with page.expect_download() as info:
        page.click(f"{WIDGET} [data-export={kind}]")
    # the file's name says what it holds: project, metrics, grouping, what
    suggested = info.value.suggested_filename
    assert suggested.startswith("demo_") and ("_by-" in suggested or "_per-run" in suggested)
    target = ARTIFACTS / name
    info.value.save_as(str(target))
    return target


def test_export_csv_is_the_aggregated_frame(quickstart: Any) -> None:
    page, kernel = quickstart
    text = download(page, "csv", "explorer-export.csv").read_text()
    header = text.splitlines()[0].split(",")
    assert "series" in header and "line" in header
    assert len(text.strip().splitlines()) - 1 == kernel.eval("explorer.aggregated.height")


def test_export_parquet_carries_its_recipe(quickstart: Any) -> None:
    page, kernel = quickstart
    recipe = read_recipe(download(page, "parquet", "explorer-export.parquet"))
    assert recipe["rungroup_view"]["group_by"] == kernel.eval("explorer.group_by")


def test_export_png_is_the_chart_image(quickstart: Any) -> None:
    page, _ = quickstart
    png = download(page, "png", "explorer-chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_dark_theme_embeds_the_chart_again_in_its_colours(quickstart: Any) -> None:
    page, _ = quickstart
    page.locator(WIDGET).screenshot(path=str(ARTIFACTS / "explorer-light.png"))
    ink = "el => getComputedStyle(el).color"
    light_ink = page.eval_on_selector(WIDGET, ink)
    before = probe(page)
    try:
        set_theme(page, "JupyterLab Dark")
        wait_render(page, before["renders"])
        page.locator(WIDGET).screenshot(path=str(ARTIFACTS / "explorer-dark.png"))
        assert page.eval_on_selector(WIDGET, ink) != light_ink
        assert probe(page)["embedded"] == before["embedded"] + 1, "not embedded again"
        # an exported image is opaque: the dark page's background, or white if asked
        dark = Image.open(download(page, "png", "explorer-chart-dark.png")).convert("RGBA")
        corners = [dark.getpixel(p) for p in ((0, 0), (dark.width - 1, dark.height - 1))]
        assert all(c[3] == 255 and sum(c[:3]) < 3 * 80 for c in corners), corners
        white = Image.open(download(page, "png_white", "explorer-chart-white.png")).convert("RGBA")
        assert white.getpixel((0, 0)) == (255, 255, 255, 255)
    finally:
        before = probe(page)["renders"]
        set_theme(page, "JupyterLab Light")
        wait_render(page, before)


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
    wait_render(page, 0, timeout=90_000)
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
    wait_render(page, 0, timeout=90_000)
    kernel = kernel_for(jupyter, "quickstart-nb7.ipynb")
    try:
        check_chart_matches_python(page, kernel)
        # the legend names the grouping; the image for viewers without widgets is hidden
        assert page.inner_text(f"{WIDGET} .rg-legend-title") == "group"
        assert page.locator(".rungroup-static").count() == 1
        assert page.locator(".rungroup-static").is_hidden()
        act(page, lambda: page.click(f"{WIDGET} .rg-group-toggle"))
        assert kernel.eval("explorer.grouping") is False
        check_chart_matches_python(page, kernel)
        page.locator(WIDGET).screenshot(path=str(ARTIFACTS / "explorer-notebook7.png"))
    finally:
        kernel.close()
    (ARTIFACTS / "notebook7-own-errors.txt").write_text("\n".join(watch.ignored) + "\n")
