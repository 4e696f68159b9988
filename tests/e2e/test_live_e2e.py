"""Live mode in real JupyterLab: a writer process logs runs into a store while a notebook
shows ``rg.Explorer(store, live=True, refresh_interval=0.5)``; the table and the chart data
grow, a state turns finished, nothing re-embeds, and the Live toggle stops the polling."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from tests.e2e.helpers import (
    WIDGET,
    Server,
    Watch,
    kernel_for,
    open_lab,
    probe,
    renders,
    wait_render,
)

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import rungroup as rg

    store, signals = Path(sys.argv[1]), Path(sys.argv[2])

    def wait(name):
        while not (signals / name).exists():
            time.sleep(0.05)

    def log(run, start, stop):
        for step in range(start, stop):
            run.log({"loss": 1.0 / (step + 1), "acc": step / 100}, step=step)
        run._flush()

    first = rg.init(dir=store, project="live", group="g", name="first", config={"lr": 0.1})
    second = rg.init(dir=store, project="live", group="g", name="second", config={"lr": 0.2})
    log(first, 0, 5)
    log(second, 0, 5)
    (signals / "ready").touch()
    wait("go")
    for start in range(5, 25, 5):  # a few appends, a poll apart
        log(first, start, start + 5)
        log(second, start, start + 5)
        time.sleep(0.3)
    third = rg.init(dir=store, project="live", group="g", name="third", config={"lr": 0.3})
    log(third, 0, 10)
    first.finish()
    wait("end")
    second.finish()
    third.finish()
    """
)


def wait_probe(page: Any, test: str, timeout: float = 20_000) -> None:
    """Wait until `test` (a JS expression of `p`, the widget's probe) holds."""
    page.wait_for_function(
        f"() => {{ const el = document.querySelector('{WIDGET}');"
        f" const p = el && el.rungroupProbe; return p !== undefined && ({test}); }}",
        timeout=timeout,
    )


def row_text(page: Any, name: str) -> str:
    return str(
        page.eval_on_selector_all(
            f"{WIDGET} .rg-tr.rg-run",
            "(rows, name) => rows.filter(r => r.querySelector('.rg-run-name')?.textContent"
            " === name).map(r => r.textContent).join('')",
            name,
        )
    )


def test_live_explorer_follows_a_writer(
    page: Any, jupyter: Server, watch: Watch, tmp_path: Path
) -> None:
    store, signals = tmp_path / "store", tmp_path / "signals"
    store.mkdir()
    signals.mkdir()
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen([sys.executable, str(script), str(store), str(signals)])
    try:
        deadline = time.monotonic() + 30
        while not (signals / "ready").exists():
            assert writer.poll() is None, "the writer died"
            assert time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.05)
        notebook = jupyter.write_notebook(
            "live.ipynb",
            [
                "import rungroup as rg\n"
                f"explorer = rg.Explorer({str(store)!r}, live=True, refresh_interval=0.5,"
                " grouping=False)\nexplorer",
            ],
        )
        open_lab(page, jupyter.url, notebook)
        wait_render(page, 0, timeout=60_000)
        shown = probe(page)
        assert shown["total"] == 2
        points_before = shown["points"]
        assert shown["viewRows"] == points_before  # what the Vega view holds
        embedded = shown["embedded"]
        toggle = f"{WIDGET} .rg-live-toggle"
        assert page.get_attribute(toggle, "aria-pressed") == "true"
        assert "running" in row_text(page, "first")
        # hide a run: it must stay hidden through the live updates
        before = renders(page)
        page.click(f"{WIDGET} .rg-tr.rg-run[data-key] >> nth=1 >> .rg-eye")
        wait_render(page, before)
        hidden_name = page.eval_on_selector(
            f"{WIDGET} .rg-tr.rg-run.rg-hidden", "r => r.querySelector('.rg-run-name').textContent"
        )

        (signals / "go").touch()
        # a new run appears, the lines grow, the first run finishes
        wait_probe(page, "p.total === 3")
        wait_probe(page, f"p.points > {points_before} && p.viewRows > {points_before}")
        page.wait_for_function(
            f"() => [...document.querySelectorAll('{WIDGET} .rg-tr.rg-run')].some(r =>"
            " r.querySelector('.rg-run-name')?.textContent === 'first'"
            " && r.textContent.includes('finished'))",
            timeout=20_000,
        )
        assert "running" in row_text(page, "second")
        # in place: the same Vega view got new data (no second embed); the hidden run stays so
        assert probe(page)["embedded"] == embedded
        hidden_now = page.eval_on_selector_all(
            f"{WIDGET} .rg-tr.rg-run.rg-hidden",
            "rows => rows.map(r => r.querySelector('.rg-run-name').textContent)",
        )
        assert hidden_now == [hidden_name]
        kernel = kernel_for(jupyter, notebook)
        try:
            assert kernel.eval("explorer.polls") > 1
            # the Live toggle stops the polling
            page.click(toggle)
            page.wait_for_function(
                f"() => document.querySelector('{toggle}').getAttribute('aria-pressed') === 'false'"
            )
            deadline = time.monotonic() + 10
            while kernel.eval("explorer.live"):
                assert time.monotonic() < deadline, "live stayed on"
                time.sleep(0.1)
            polls = kernel.eval("explorer.polls")
            (signals / "end").touch()
            writer.wait(timeout=20)
            time.sleep(1.5)  # three intervals
            assert kernel.eval("explorer.polls") == polls
            assert kernel.eval("explorer._live.timer is None")
            assert "running" in row_text(page, "second")  # not followed any more
        finally:
            kernel.close()
    finally:
        (signals / "end").touch()
        try:
            writer.wait(timeout=20)
        except subprocess.TimeoutExpired:
            writer.kill()
    assert watch.errors == [] and watch.blocked == []
