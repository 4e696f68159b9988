"""What a researcher sees of the charts, checked as they would see it in JupyterLab: colours
that stay with their group, a legend that names what was grouped, tooltips at any x, and
screenshots (light and dark, 800 and 1600 px, a group page, a tooltip) kept as artifacts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.helpers import (
    ARTIFACTS,
    WIDGET,
    Kernel,
    Server,
    Watch,
    act,
    kernel_for,
    open_lab,
    probe,
    renders,
    set_theme,
    wait_render,
    watched_page,
)

pytestmark = pytest.mark.e2e

LOOK = ARTIFACTS / "look"


@pytest.fixture(scope="module")
def lab(browser: Any, jupyter: Server) -> Iterator[tuple[Any, Kernel]]:
    """The quickstart grouped by learning rate, in a light JupyterLab."""
    LOOK.mkdir(parents=True, exist_ok=True)
    watch = Watch()
    with watched_page(browser, watch, "chart-look") as page:
        open_lab(page, jupyter.url, "quickstart.ipynb", theme="JupyterLab Light")
        wait_render(page, 0, timeout=90_000)
        kernel = kernel_for(jupyter, "quickstart.ipynb")
        try:
            act(page, lambda: kernel.run("explorer.group_by = ['config.lr']"))
            yield page, kernel
        finally:
            kernel.close()


def legend_colours(page: Any) -> dict[str, str]:
    """Each legend entry's series and its swatch's colour."""
    colours: dict[str, str] = page.eval_on_selector_all(
        f"{WIDGET} .rg-legend-item",
        "els => Object.fromEntries(els.map(e => [e.dataset.series,"
        " getComputedStyle(e.querySelector('.rg-legend-swatch')).backgroundColor]))",
    )
    return colours


def table_colours(page: Any) -> dict[str, str]:
    colours: dict[str, str] = page.eval_on_selector_all(
        f"{WIDGET} .rg-tr.rg-group",
        "els => Object.fromEntries(els.map(e => [e.dataset.series,"
        " getComputedStyle(e.querySelector('.rg-swatch')).backgroundColor]))",
    )
    return colours


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_a_groups_colour_stays_when_another_group_is_hidden_and_on_its_page(lab: Any) -> None:
    page, kernel = lab
    expected = kernel.eval(
        "__import__('rungroup.palette', fromlist=['x']).group_colours(explorer.runs, explorer.view)"
    )
    before = legend_colours(page)
    assert before == {s: rgb(c) for s, c in expected.items()}, "legend = the palette's colours"
    strokes = probe(page)["strokes"]
    assert {s: rgb(strokes[s]) for s in before} == before, "line colour = legend colour"
    assert table_colours(page) == before, "table swatch = legend colour"
    first, second, *_ = list(before)
    # hide the first group: every other group keeps its colour
    row = page.locator(f"{WIDGET} .rg-tr.rg-group[data-series='{first}']")
    act(page, lambda: row.locator(".rg-eye").click())
    after = legend_colours(page)
    assert first not in after
    assert after == {s: c for s, c in before.items() if s != first}
    strokes = probe(page)["strokes"]
    assert rgb(strokes[second]) == before[second]
    # the second group's page draws its line in its colour, its runs in shades of it
    name = page.locator(f"{WIDGET} .rg-tr.rg-group[data-series='{second}'] .rg-group-name")
    act(page, lambda: name.click())
    strokes = probe(page)["strokes"]
    assert rgb(strokes[second]) == before[second]
    runs = [s for s in strokes if s != second]
    assert runs and len({strokes[s] for s in runs}) == len(runs), "each run a shade of its own"
    page.mouse.move(0, 0)
    page.locator(WIDGET).screenshot(path=str(LOOK / "group-page-light-1400.png"))
    act(page, lambda: page.click(f"{WIDGET} .rg-back"))
    act(page, lambda: kernel.run("explorer.hidden = []"))


def test_the_legend_names_the_key_counts_runs_and_isolation_can_be_undone(lab: Any) -> None:
    page, kernel = lab
    assert page.inner_text(f"{WIDGET} .rg-legend-title") == "config.lr"
    labels = page.eval_on_selector_all(
        f"{WIDGET} .rg-legend-item .rg-legend-label", "els => els.map(e => e.textContent)"
    )
    lrs = kernel.eval(
        "[f'lr={v:g}' for v in explorer.aggregated.unique('series', maintain_order=True)"
        "['config.lr'].to_list()]"
    )
    assert labels == lrs
    counts = page.eval_on_selector_all(
        f"{WIDGET} .rg-legend-item .rg-legend-n", "els => els.map(e => e.textContent)"
    )
    sizes = kernel.eval(
        "[f\"n={explorer.runs.runs.filter(pl.col('config.lr') == v).height}\""
        " for v in explorer.aggregated.unique('series', maintain_order=True)['config.lr']]"
    )
    assert counts == sizes
    first = page.locator(f"{WIDGET} .rg-legend-item").first
    first.click()
    assert first.get_attribute("aria-pressed") == "true"
    assert page.locator(f"{WIDGET} .rg-legend-out").count() == len(labels) - 1
    # hovering a series the isolation leaves out brings nothing forward (nothing washed back);
    # the isolated one is drawn over the others
    emphasised = f"document.querySelector('{WIDGET}').rungroupProbe.emphasised"
    rows = page.locator(f"{WIDGET} .rg-tr.rg-group")
    rows.nth(1).hover()
    page.wait_for_function(f"() => document.querySelector('{WIDGET}').rungroupProbe.hover !== ''")
    assert page.evaluate(emphasised) == 0 and page.is_hidden(f"{WIDGET} canvas.rg-emphasis")
    rows.nth(0).hover()
    page.wait_for_function(f"() => {emphasised} > 0")
    page.mouse.move(0, 0)
    page.click(f"{WIDGET} .rg-legend-all")
    assert page.locator(f"{WIDGET} .rg-legend-out").count() == 0
    assert page.locator(f"{WIDGET} .rg-legend-all").count() == 0


def test_hovering_between_points_lists_every_visible_series(lab: Any) -> None:
    page, kernel = lab
    panel = probe(page)["panels"][0]
    metric = kernel.eval("explorer.aggregated['metric'].unique(maintain_order=True)[0]")
    shown = kernel.eval(
        f"explorer.aggregated.filter(pl.col('metric') == {metric!r})['series'].n_unique()"
    )
    # a point between two x values, off every line
    page.mouse.move(panel["x"] + panel["width"] * 0.437, panel["y"] + 3)
    page.wait_for_selector(f"{WIDGET} .rg-tooltip:not([hidden])")
    rows = page.locator(f"{WIDGET} .rg-tooltip tbody tr")
    assert rows.count() == shown
    assert page.is_visible(f"{WIDGET} .rg-crosshair")
    head = page.locator(f"{WIDGET} .rg-tooltip th").all_inner_texts()
    assert head[1:3] == ["config.lr", "mean"] and "mean ± std" in head
    value = rows.first.locator(".rg-num").first.inner_text()
    assert len(value.replace(".", "").replace("-", "").replace("−", "").lstrip("0")) <= 4
    # the page as it is (an element screenshot would scroll it from under the pointer)
    page.screenshot(path=str(LOOK / "tooltip-light-1400.png"))
    page.mouse.move(0, 0)
    page.wait_for_selector(f"{WIDGET} .rg-tooltip", state="hidden")


@pytest.mark.parametrize("width", [800, 1600])
def test_screenshots_light_and_dark(lab: Any, width: int) -> None:
    page, _ = lab
    page.set_viewport_size({"width": width, "height": 1000})
    for name, theme in (("light", "JupyterLab Light"), ("dark", "JupyterLab Dark")):
        before = renders(page)
        set_theme(page, theme)
        if page.evaluate("() => document.body.dataset.jpThemeName") != theme:
            wait_render(page, before)
        page.wait_for_timeout(800)
        page.locator(WIDGET).scroll_into_view_if_needed()
        page.mouse.move(0, 0)
        page.locator(WIDGET).screenshot(path=str(LOOK / f"{name}-{width}.png"))
        # a group's row hovered: its series drawn over the others, washed back in the theme
        page.hover(f"{WIDGET} .rg-tr.rg-group >> nth=1")
        page.wait_for_function(
            "(sel) => document.querySelector(sel).rungroupProbe.emphasised > 0", arg=WIDGET
        )
        # the page as it is (an element screenshot would scroll it from under the pointer)
        page.screenshot(path=str(LOOK / f"hover-{name}-{width}.png"))
        page.mouse.move(0, 0)
    before = renders(page)
    set_theme(page, "JupyterLab Light")
    page.wait_for_timeout(800)
    page.set_viewport_size({"width": 1400, "height": 1000})
    assert renders(page) >= before


def test_fewer_runs_are_drawn_dashed_and_smoothing_is_named(lab: Any) -> None:
    """On a relative-time axis runs end at different times: past the first end the series'
    line is dashed and its band lighter; a smoothed chart names its smoothing and keeps the
    unsmoothed line faintly behind."""
    page, kernel = lab
    assert probe(page)["dashed"] == 0  # on steps every run logged every step
    act(page, lambda: kernel.run("explorer.update(x='time', smoothing='ema')"))
    reduced = kernel.eval(
        "explorer.aggregated.group_by('series', 'metric')"
        ".agg((pl.col('n') < pl.col('n').max()).any()).filter(pl.col('n'))['n'].len()"
    )
    assert reduced > 0 and probe(page)["dashed"] == reduced
    subtitle = kernel.eval("explorer.spec['concat'][0]['title']['subtitle']")
    assert subtitle.startswith("smoothed: EMA 0.6") and "unsmoothed" in subtitle
    assert kernel.eval(
        "any(layer['encoding']['y']['field'] == 'raw'"
        " for layer in explorer.spec['concat'][0]['layer'])"
    )
    page.mouse.move(0, 0)
    page.locator(WIDGET).screenshot(path=str(LOOK / "time-smoothed-light-1400.png"))
    act(page, lambda: kernel.run("explorer.update(x='step', smoothing='none')"))


def test_wall_time_axis_shows_hours_and_the_day(lab: Any) -> None:
    page, kernel = lab
    act(page, lambda: kernel.run("explorer.x = 'timestamp'"))
    axis = kernel.eval("explorer.spec['concat'][0]['layer'][0]['encoding']['x']['axis']")
    assert "%H:%M" in axis["labelExpr"] and "%b %d" in axis["labelExpr"]
    assert axis["labelOverlap"] is True
    page.mouse.move(0, 0)
    page.locator(WIDGET).screenshot(path=str(LOOK / "timestamp-light-1400.png"))
    act(page, lambda: kernel.run("explorer.x = 'step'"))


@pytest.mark.parametrize("width", [800, 1600])
def test_panels_fill_the_widget_and_nothing_sticks_out(lab: Any, width: int) -> None:
    """At an 800 and a 1600 px window the panels use at least 80 % of the chart's width and
    none of them (nor the legend) extends past the widget."""
    page, _ = lab
    before = renders(page)
    page.set_viewport_size({"width": width, "height": 1000})
    try:
        page.wait_for_function(
            "([sel, n]) => document.querySelector(sel).rungroupProbe.renders > n",
            arg=[WIDGET, before],
            timeout=5_000,
        )
        wait_render(page, before)
    except Exception:  # the same number of columns fits: resized in place, no repaint
        page.wait_for_timeout(500)
    page.locator(WIDGET).scroll_into_view_if_needed()
    widget = page.locator(WIDGET).bounding_box()
    chart = page.locator(f"{WIDGET} .rg-chart").bounding_box()
    canvas = page.locator(f"{WIDGET} .rg-chart canvas.marks").bounding_box()
    legend = page.locator(f"{WIDGET} .rg-legend").bounding_box()
    assert widget and chart and canvas and legend
    right = widget["x"] + widget["width"]
    assert canvas["x"] + canvas["width"] <= right + 1, "a panel extends past the widget"
    assert legend["x"] + legend["width"] <= right + 1, "the legend extends past the widget"
    panels = page.evaluate(
        "(sel) => { const el = document.querySelector(sel);"
        " const box = el.querySelector('.rg-chart canvas.marks').getBoundingClientRect();"
        " return box.width; }",
        WIDGET,
    )
    assert panels >= 0.8 * chart["width"], f"panels use {panels:.0f} of {chart['width']:.0f} px"
    page.mouse.move(0, 0)
    page.locator(WIDGET).screenshot(path=str(LOOK / f"fit-light-{width}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.wait_for_timeout(600)


def test_dragging_the_handle_sets_the_panels_height(lab: Any) -> None:
    page, _ = lab
    page.locator(f"{WIDGET} .rg-chart-resize").scroll_into_view_if_needed()
    first = probe(page)["panels"]
    before = page.locator(f"{WIDGET} .rg-chart canvas.marks").bounding_box()
    handle = page.locator(f"{WIDGET} .rg-chart-resize").bounding_box()
    assert before and handle and first
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y + 60, steps=5)
    page.mouse.up()
    page.wait_for_timeout(400)
    after = page.locator(f"{WIDGET} .rg-chart canvas.marks").bounding_box()
    assert after and after["height"] > before["height"] + 60  # every row of panels grew


def test_the_fallback_image_is_hidden_where_the_widget_renders(lab: Any) -> None:
    """The Explorer's output is preceded by an image of its chart for viewers that cannot
    run it; in JupyterLab the widget hides that output and is shown itself."""
    page, _ = lab
    assert page.locator(".rungroup-static").count() == 1
    assert page.locator(".rungroup-static").is_hidden()
    assert page.locator(WIDGET).is_visible()


def test_a_filter_that_matches_nothing_says_so(lab: Any) -> None:
    page, kernel = lab
    act(page, lambda: kernel.run("explorer.search = 'no-such-run'"))
    notice = page.locator(f"{WIDGET} .rg-chart-notice")
    assert notice.is_visible() and notice.inner_text() == "No runs match 'no-such-run'"
    assert page.locator(f"{WIDGET} .rg-chart-canvas").is_hidden()
    assert page.locator(f"{WIDGET} .rg-legend").is_hidden()
    page.locator(WIDGET).screenshot(path=str(LOOK / "empty-light-1400.png"))
    act(page, lambda: kernel.run("explorer.search = ''"))
    assert notice.is_hidden() and page.locator(f"{WIDGET} .rg-chart-canvas").is_visible()


def test_menus_open_inside_the_widget_and_close_on_escape(lab: Any) -> None:
    page, _ = lab
    page.set_viewport_size({"width": 800, "height": 1000})
    page.wait_for_timeout(500)
    try:
        for button, menu in (
            (".rg-toolbar .rg-export-button", ".rg-toolbar .rg-export-menu"),
            (".rg-metrics-button", ".rg-metrics-menu"),
            (".rg-columns-button", ".rg-column-picker"),
        ):
            page.click(f"{WIDGET} {button}")
            page.wait_for_selector(f"{WIDGET} {menu}:not([hidden])")
            page.wait_for_timeout(100)
            widget = page.locator(WIDGET).bounding_box()
            box = page.locator(f"{WIDGET} {menu}").bounding_box()
            assert widget and box
            assert box["x"] >= widget["x"] - 1, f"{menu} hangs past the widget's left edge"
            assert box["x"] + box["width"] <= widget["x"] + widget["width"] + 1
            if "export" in menu:
                page.locator(WIDGET).screenshot(path=str(LOOK / "export-menu-light-800.png"))
            page.keyboard.press("Escape")
            page.wait_for_selector(f"{WIDGET} {menu}", state="hidden")
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.wait_for_timeout(500)


def test_group_rows_and_the_status_line_tell_the_truth(lab: Any) -> None:
    page, kernel = lab
    group = page.locator(f"{WIDGET} .rg-tr.rg-group").first
    series = group.get_attribute("data-series")
    total = kernel.eval(f"explorer.runs.runs.filter(pl.col('config.lr') == {float(series)}).height")
    act(page, lambda: group.locator(".rg-expand").click())
    run = page.locator(f"{WIDGET} .rg-tr.rg-run").first
    act(page, lambda: run.locator(".rg-eye").click())
    group = page.locator(f"{WIDGET} .rg-tr.rg-group[data-series='{series}']")
    runs_cell = group.locator(".rg-td").nth(1)
    assert runs_cell.inner_text() == f"{total - 1} of {total}"
    # the legend says the same, and a config key the runs differ in reads as a muted count
    entry = page.locator(f"{WIDGET} .rg-legend-item[data-series='{series}'] .rg-legend-n")
    assert entry.inner_text() == f"n={total - 1} of {total}"
    # on the group page the status line counts the group's runs
    act(page, lambda: group.locator(".rg-group-name").click())
    status = page.inner_text(f"{WIDGET} .rg-status")
    assert status.startswith(f"group lr={series} · {total} runs"), status
    act(page, lambda: page.click(f"{WIDGET} .rg-back"))
    act(page, lambda: kernel.run("explorer.update(hidden=[], expanded=[])"))


def test_ticking_a_column_keeps_the_tables_order(lab: Any) -> None:
    page, kernel = lab
    before = [c["name"] for c in kernel.eval("explorer._table().columns")]
    offered = [c["name"] for c in kernel.eval("explorer._table().all_columns")]
    extra = next(c for c in offered if c not in before and c.startswith("config."))
    page.click(f"{WIDGET} .rg-columns-button")
    box = page.locator(f"{WIDGET} .rg-column-picker label", has_text=extra)
    act(page, lambda: box.locator("input").check())
    after = kernel.eval("list(explorer.table_columns)")
    assert after == [*before, extra]
    page.keyboard.press("Escape")
    act(page, lambda: kernel.run("explorer.table_columns = []"))


def test_nested_grouping_is_a_tree_and_plus_proposes_the_best_split(lab: Any) -> None:
    page, kernel = lab
    act(page, lambda: page.click(f"{WIDGET} .rg-add-level"))
    assert kernel.eval("explorer.group_by") == ["config.lr", "config.seed"]
    branches = page.locator(f"{WIDGET} .rg-tr.rg-branch")
    lrs = kernel.eval("explorer.runs.runs['config.lr'].n_unique()")
    assert branches.count() == lrs and page.locator(f"{WIDGET} .rg-tr.rg-group").count() == 0
    first = branches.first
    act(page, lambda: first.locator(".rg-expand").click())
    groups = page.locator(f"{WIDGET} .rg-tr.rg-group")
    assert groups.count() >= 1
    assert groups.first.locator(".rg-group-name").inner_text().startswith("seed=")
    # identifier-like and continuous columns are listed apart in the group-by choices
    apart = page.eval_on_selector_all(
        f"{WIDGET} select.rg-group-by >> nth=0 >> optgroup", "els => els.map(e => e.label)"
    )
    assert "one value per run" in apart and "continuous values" in apart
    page.mouse.move(0, 0)
    page.locator(WIDGET).screenshot(path=str(LOOK / "tree-light-1400.png"))
    act(page, lambda: kernel.run("explorer.update(group_by=['config.lr'], expanded=[])"))


def test_table_columns_fit_their_content_and_a_group_page_leads_with_what_differs(
    lab: Any,
) -> None:
    page, kernel = lab
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.wait_for_timeout(400)
    try:
        widths = page.eval_on_selector_all(
            f"{WIDGET} .rg-th", "els => els.map(e => e.getBoundingClientRect().width)"
        )
        viewport = page.eval_on_selector(f"{WIDGET} .rg-viewport", "el => el.clientWidth")
        # sized to their content, the name, the run count and the four metrics are all in
        # view without a horizontal scroll (the columns that differ follow)
        assert sum(widths[:6]) <= viewport, (widths, viewport)
        assert max(widths) < 300 and min(widths) >= 56
        group = page.locator(f"{WIDGET} .rg-tr.rg-group .rg-group-name").first
        act(page, lambda: group.click())
        columns = [c["name"] for c in kernel.eval("explorer._table().columns")]
        differing = kernel.eval(
            "[c for c in explorer._table().all_columns and"
            " [c['name'] for c in explorer._table().all_columns if c['name'].startswith('config.')]"
            " if explorer._frame().runs.runs.filter(pl.col('id').is_in("
            "explorer._frame().membership.filter(pl.col('series') == explorer.focus)['id']"
            ".implode()))[c].n_unique() > 1]"
        )
        assert differing and columns[1 : 1 + len(differing)] == differing, columns
        page.locator(WIDGET).screenshot(path=str(LOOK / "group-page-light-1600.png"))
        act(page, lambda: page.click(f"{WIDGET} .rg-back"))
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.wait_for_timeout(400)
