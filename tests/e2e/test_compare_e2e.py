"""The Explorer's Compare view in real JupyterLab, driven by Playwright with chromium.

One notebook (the demo's runs grouped by learning rate) opened once for the module. Every
step is checked in the browser (the table's rows and order, what the forest plot drew, read
from its Vega scenegraph through `element.rungroupCompare`) and against `rungroup.compare`
computed in the kernel on the same runs and View.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest
from tests.e2e.helpers import (
    ARTIFACTS,
    WIDGET,
    Kernel,
    Server,
    Watch,
    act,
    assert_clean,
    kernel_for,
    open_lab,
    set_theme,
    wait_render,
    watched_page,
)

from rungroup.export import read_recipe

pytestmark = pytest.mark.e2e

NOTEBOOK = "compare.ipynb"
XSS = "<img src=x onerror=alert(1)>"
CELLS = [
    "import os\n\nimport polars as pl\n\nimport rungroup as rg\n\n"
    'runs = rg.load(os.environ["RUNGROUP_DEMO_DIR"])',
    'explorer = rg.Explorer(runs, group_by=["config.lr"])\nexplorer',
]
COMPARE = f"{WIDGET} .rg-compare"
#: Reply columns that are `rungroup.compare` columns of the same name.
SAME = ("n", "diff", "diff_low", "diff_high", "prob_improvement", "p_holm")


@dataclass
class Lab:
    page: Any
    kernel: Kernel
    watch: Watch


@pytest.fixture(scope="module")
def lab(browser: Any, jupyter: Server) -> Iterator[Lab]:
    watch = Watch()
    jupyter.write_notebook(NOTEBOOK, CELLS)
    with watched_page(browser, watch, "compare-lab") as page:
        open_lab(page, jupyter.url, NOTEBOOK, theme="JupyterLab Light")
        wait_render(page, 0, timeout=90_000)
        kernel = kernel_for(jupyter, NOTEBOOK)
        try:
            yield Lab(page, kernel, watch)
        finally:
            kernel.close()


def compare_probe(page: Any) -> dict[str, Any]:
    value = page.eval_on_selector(WIDGET, "el => el.rungroupCompare")
    assert isinstance(value, dict), "no Compare view probe: is the widget rendered?"
    return value


def shown(page: Any, action: Any) -> dict[str, Any]:
    """Do `action()` and wait until the Compare view showed the reply it causes."""
    before = compare_probe(page)["renders"]
    action()
    page.wait_for_function(
        "([sel, after]) => { const el = document.querySelector(sel);"
        " return el.rungroupCompare.renders > after"
        " && !el.querySelector('.rg-compare').classList.contains('rg-busy'); }",
        arg=[WIDGET, before],
        timeout=60_000,  # a new Runs is grouped and compared again: slow on a loaded machine
    )
    page.wait_for_timeout(150)  # a burst of trait changes may bring a second reply
    page.wait_for_function(
        "(sel) => !document.querySelector(sel).querySelector('.rg-compare')"
        ".classList.contains('rg-busy')",
        arg=WIDGET,
    )
    return compare_probe(page)


def kernel_compare(kernel: Kernel, **settings: Any) -> list[dict[str, Any]]:
    """`rungroup.compare` computed in the kernel on the widget's shown runs and View."""
    args = ", ".join(f"{k}={v!r}" for k, v in settings.items())
    frame = f"rg.compare(explorer.filtered_runs, explorer.view, {args})"
    rows = json.loads(kernel.eval(f"__import__('json').dumps({frame}.to_dicts())"))
    assert isinstance(rows, list)
    return rows


def same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15)


def check_numbers(page: Any, kernel: Kernel, estimate: str = "mean", **settings: Any) -> None:
    """The table's rows (as Python sent them) equal `rungroup.compare` in the kernel."""
    state = compare_probe(page)
    truth = {str(row["series"]): row for row in kernel_compare(kernel, **settings)}
    rows = state["rows"]
    assert sorted(r["series"] for r in rows) == sorted(truth)
    for row in rows:
        expected = truth[row["series"]]
        for name in SAME:
            assert same(row[name], expected[name]), (row["series"], name)
        low = "mean_low" if estimate == "mean" else f"{estimate}_low"
        assert same(row["estimate"], expected["mean" if estimate == "mean" else estimate])
        assert same(row["low"], expected[low])
        assert row["is_baseline"] == expected["is_baseline"]
    # the DOM lists the same rows in the same order, the baseline marked
    order = page.eval_on_selector_all(
        f"{COMPARE} .rg-compare-row", "rows => rows.map(r => r.dataset.series)"
    )
    assert order == state["order"] == [r["series"] for r in rows]
    # what the cells say (4 significant digits) is those numbers
    for column in ("estimate", "diff"):
        texts = page.eval_on_selector_all(
            f"{COMPARE} td[data-column={column}]", "cells => cells.map(c => c.textContent)"
        )
        for text, row in zip(texts, rows, strict=True):
            value = text.split(" [")[0]
            if row[column] is None:
                assert value == "–"
            else:
                assert float(value) == pytest.approx(row[column], rel=1e-3, abs=1e-12)
    marked = page.eval_on_selector_all(
        f"{COMPARE} .rg-compare-base-row", "rows => rows.map(r => r.dataset.series)"
    )
    assert marked == [state["baseline"]] == [s for s, r in truth.items() if r["is_baseline"]]


def check_forest(page: Any) -> None:
    """One interval and one point per group with a finite estimate; one baseline rule, at
    the baseline's point."""
    state = compare_probe(page)
    drawn = [r for r in state["rows"] if r["low"] is not None]
    assert state["intervals"] == len(drawn) > 0
    assert state["points"] == sum(r["estimate"] is not None for r in state["rows"])
    assert state["baselineRules"] == 1
    assert state["baselineX"] == pytest.approx(state["baselinePointX"])


@pytest.fixture
def compare_view(lab: Lab) -> Iterator[tuple[Any, Kernel]]:
    page, kernel = lab.page, lab.kernel
    page.mouse.move(0, 0)
    page.mouse.click(5, 5)
    if kernel.eval("explorer.panel") != "compare":
        shown(page, lambda: page.click(f"{WIDGET} .rg-switch-compare"))
    page.locator(WIDGET).scroll_into_view_if_needed()
    yield page, kernel
    try:
        assert_clean(lab.watch)
    finally:
        lab.watch.errors.clear()


def test_compare_opens_with_the_first_group_as_baseline(compare_view: Any) -> None:
    page, kernel = compare_view
    assert kernel.eval("explorer.panel") == "compare"
    assert page.is_hidden(f"{WIDGET} .rg-chart") and page.is_visible(COMPARE)
    state = compare_probe(page)
    groups = kernel.eval("explorer.compared['series'].to_list()")
    assert state["baseline"] == groups[0] == "0.001"
    metric = kernel.eval("explorer.runs.metrics[0]")
    check_numbers(page, kernel, metric=metric, baseline=groups[0])
    check_forest(page)
    assert "higher is better (guessed from the name)" in page.inner_text(
        f"{COMPARE} .rg-compare-direction"
    )
    # a group's swatch has its colour in the charts (the runs table's swatch is the chart's)
    colour = "el => getComputedStyle(el).backgroundColor"
    for series in groups:
        in_table = page.eval_on_selector(
            f"{WIDGET} .rg-tr.rg-group[data-series='{series}'] .rg-swatch", colour
        )
        in_compare = page.eval_on_selector(
            f"{COMPARE} .rg-compare-row[data-series='{series}'] .rg-swatch", colour
        )
        assert in_table == in_compare != "rgba(0, 0, 0, 0)", series


def test_metric_reduction_baseline_and_direction(compare_view: Any) -> None:
    page, kernel = compare_view
    shown(page, lambda: page.select_option(f"{COMPARE} select.rg-compare-metric", "val_loss"))
    assert "lower is better (guessed from the name)" in page.inner_text(
        f"{COMPARE} .rg-compare-direction"
    )
    shown(page, lambda: page.select_option(f"{COMPARE} select.rg-compare-reduce", "mean_last"))
    assert page.is_visible(f"{COMPARE} .rg-compare-k")

    def type_k() -> None:
        page.fill(f"{COMPARE} .rg-compare-k", "3")
        page.press(f"{COMPARE} .rg-compare-k", "Enter")

    shown(page, type_k)
    shown(page, lambda: page.select_option(f"{COMPARE} select.rg-compare-baseline", "0.1"))
    settings = kernel.eval("explorer.compare")
    assert settings["metric"] == "val_loss" and settings["reduce"] == "mean_last"
    assert settings["k"] == 3 and settings["baseline"] == "0.1"
    common = {"metric": "val_loss", "reduce": "mean_last", "k": 3, "baseline": "0.1"}
    check_numbers(page, kernel, **common)
    check_forest(page)
    # flip the direction: P(improvement) becomes its complement
    before = {r["series"]: r["prob_improvement"] for r in compare_probe(page)["rows"]}
    shown(page, lambda: page.click(f"{COMPARE} .rg-compare-flip"))
    assert kernel.eval("explorer.compare['higher_is_better']") is True
    assert page.inner_text(f"{COMPARE} .rg-compare-direction") == "higher is better"
    check_numbers(page, kernel, **common, higher_is_better=True)
    for row in compare_probe(page)["rows"]:
        if before[row["series"]] is not None:
            assert row["prob_improvement"] == pytest.approx(1 - before[row["series"]])
    shown(page, lambda: page.select_option(f"{COMPARE} select.rg-compare-estimate", "iqm"))
    check_numbers(page, kernel, estimate="iqm", **common, higher_is_better=True)
    page.locator(WIDGET).screenshot(path=str(ARTIFACTS / "compare-changed.png"))
    # another metric: its direction is guessed again
    shown(page, lambda: page.select_option(f"{COMPARE} select.rg-compare-metric", "val_acc"))
    assert kernel.eval("explorer.compare['higher_is_better']") is None
    assert page.inner_text(f"{COMPARE} .rg-compare-direction") == (
        "higher is better (guessed from the name)"
    )


def test_sorting_by_a_column(compare_view: Any) -> None:
    page, _ = compare_view
    header = f"{COMPARE} th[data-column=estimate]"
    state = shown(page, lambda: page.click(header))
    values = [r["estimate"] for r in state["rows"]]
    assert values == sorted(values)
    assert page.inner_text(header).endswith("▲")
    state = shown(page, lambda: page.click(header))
    values = [r["estimate"] for r in state["rows"]]
    assert values == sorted(values, reverse=True)
    assert page.inner_text(header).endswith("▼")
    # the DOM follows, and the forest plot lists the groups in the table's order
    first = page.get_attribute(f"{COMPARE} .rg-compare-row >> nth=0", "data-series")
    assert first == state["order"][0]
    with_estimate = [r["series"] for r in state["rows"] if r["estimate"] is not None]
    assert state["pointOrder"] == with_estimate


def test_hiding_a_group_leaves_it_out(compare_view: Any) -> None:
    page, kernel = compare_view
    before = compare_probe(page)
    series = before["order"][-1]
    if series == before["baseline"]:
        series = before["order"][0]
    shown(
        page,
        lambda: page.click(f"{WIDGET} .rg-tr.rg-group[data-series='{series}'] .rg-eye"),
    )
    after = compare_probe(page)
    assert series not in after["order"] and len(after["order"]) == len(before["order"]) - 1
    settings = kernel.eval("explorer.compare")
    check_numbers(
        page,
        kernel,
        metric=settings["metric"] or kernel.eval("explorer.runs.metrics[0]"),
        reduce=settings["reduce"],
        k=settings["k"],
        baseline=after["baseline"],
        higher_is_better=settings["higher_is_better"],
        estimate=settings["estimate"],
    )
    check_forest(page)
    assert after["intervals"] < before["intervals"] or after["points"] < before["points"]
    act(page, lambda: kernel.run("explorer.hidden = []"))


def download(page: Any, what: str, name: str) -> Any:
    page.click(f"{COMPARE} .rg-compare-export-button")
    with page.expect_download() as info:
        page.click(f"{COMPARE} [data-export={what}]")
    target = ARTIFACTS / name
    info.value.save_as(str(target))
    return target


def test_export_gives_the_compare_frame(compare_view: Any) -> None:
    page, kernel = compare_view
    csv = pl.read_csv(download(page, "compare_csv", "compare-export.csv"))
    truth = pl.read_csv(io.StringIO(kernel.eval("explorer.compared.write_csv()")))
    assert csv.equals(truth)
    assert {"mean", "diff", "prob_improvement", "p_holm"} <= set(csv.columns)
    recipe = read_recipe(download(page, "compare_parquet", "compare-export.parquet"))
    settings = kernel.eval("explorer.compare")
    assert recipe["rungroup_compare"]["reduce"] == settings["reduce"]
    assert recipe["rungroup_compare"]["correction"] == "holm"
    assert recipe["rungroup_view"]["group_by"] == ["config.lr"]
    alone = json.loads(download(page, "compare_recipe", "compare-recipe.json").read_text())
    assert alone["rungroup_compare"] == recipe["rungroup_compare"]


def test_screenshots_light_and_dark_at_two_widths(compare_view: Any) -> None:
    page, _ = compare_view
    target = ARTIFACTS / "screens-compare"
    target.mkdir(parents=True, exist_ok=True)
    themes = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
    current = themes["light"]
    try:
        for width in (800, 1600):
            page.set_viewport_size({"width": width, "height": 1000})
            for name, theme in themes.items():
                if theme != current:  # the forest plot is embedded again in its colours
                    shown(page, lambda theme=theme: set_theme(page, theme))
                    current = theme
                page.wait_for_timeout(300)
                page.locator(WIDGET).scroll_into_view_if_needed()
                page.mouse.move(0, 0)
                page.locator(WIDGET).screenshot(path=str(target / f"{name}-{width}.png"))
                box = page.locator(WIDGET).bounding_box()
                assert box is not None and box["width"] <= width, f"wider than {width} px"
                check_forest(page)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
        if current != themes["light"]:
            shown(page, lambda: set_theme(page, themes["light"]))


def test_group_labels_are_text(compare_view: Any) -> None:
    page, kernel = compare_view
    code = (
        "explorer.runs = rg.Runs(runs.runs.with_columns(pl.when(pl.col('name') == 'eval')"
        f".then(pl.lit({XSS!r})).otherwise(pl.col('name')).alias('name')), runs.history)\n"
        "explorer.grouping = False"
    )
    try:
        state = shown(page, lambda: kernel.run(code))
        assert XSS in state["order"]
        cell = f"{COMPARE} .rg-compare-row[data-series='{XSS}'] .rg-group-name"
        assert page.inner_text(cell) == XSS
        assert page.locator(f"{WIDGET} img").count() == 0
    finally:
        shown(page, lambda: kernel.run("explorer.runs = runs\nexplorer.grouping = True"))


def test_back_to_charts(compare_view: Any) -> None:
    page, kernel = compare_view
    page.click(f"{WIDGET} .rg-switch-charts")
    page.wait_for_function(
        "(sel) => document.querySelector(sel + ' .rg-compare').hidden", arg=WIDGET
    )
    # the browser hides the view at once; the trait reaches the kernel a moment later
    deadline = time.monotonic() + 10
    while kernel.eval("explorer.panel") != "charts" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kernel.eval("explorer.panel") == "charts"
    assert page.is_visible(f"{WIDGET} .rg-chart")
