"""The Explorer in a real browser: repaint latency, bytes per update, table scrolling.

    .venv/bin/python -m benchmarks.bench_widget [--repeats 12] [--json results.json]

Starts JupyterLab on 127.0.0.1 (as the e2e tests do), drives Debian's chromium with
Playwright, and measures, inside the page:

1. group-by change -> repainted chart: from the ``change`` event of the group-by dropdown to
   the second animation frame after the widget has drawn the new data (Python computes the
   aggregate, sends it as Arrow, Vega swaps the data of its view), at 1,000 runs x 1,000
   steps x 4 metrics; and to the second frame after the table's new rows (`with_table`:
   they come in a reply of their own, built while the browser draws the chart). Each change
   asks for another grouping than the one before, so every repaint is computed afresh. The
   Python side's own timings (engine, chart spec, payload, table) come back with the replies
   and are reported beside the browser's figure.
2. bytes per update: the binary buffers plus the JSON of the reply, per change; also at
   10,000 steps per run, to show that they do not grow with the number of steps.
3. a hover move over a panel of 20 series x 400 points (`hover_moves`): the crosshair's
   rule and tooltip and, when the nearest series changes, the view's redraw, until drawn.
4. scrolling a 10,000-run table (grouping off): frame times while scrolling top to bottom,
   and how many rows are in the DOM at any time.

Figures go to stdout (and to --json); docs/performance.md ("## Widget") quotes them.

``--nodelay`` starts JupyterLab with TCP_NODELAY on its kernel websockets (a server config
file, `NODELAY_CONFIG`). jupyter_server does not set it, so on Linux every message from the
kernel to the browser waits for the browser's delayed ACK (about 40 ms) whenever the message
before it is still unacknowledged, which is always the case for a reply (the kernel's "busy"
status precedes it). With the flag the figures show the widget's own cost; without it, what a
user of a stock server sees.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.helpers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    WIDGET,
    Server,
    jupyter_server,
    open_lab,
    wait_render,
)

SYNTHETIC = '''
import numpy as np
import polars as pl
import rungroup as rg


def synthetic(n_runs, n_steps, metrics=("loss", "acc", "val_loss", "val_acc"), seed=0):
    """n_runs runs x n_steps steps x len(metrics) metrics, with config keys a, b, c."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"run{i:05d}" for i in range(n_runs)])
    runs = pl.DataFrame({
        "id": ids,
        "name": ids,
        "group": [f"g{i % 8}" for i in range(n_runs)],
        "config.a": rng.integers(0, 10, n_runs),
        "config.b": rng.choice([0.1, 0.03, 0.01, 0.003, 0.001], n_runs),
        "config.c": rng.integers(0, 4, n_runs),
        "config.d": rng.integers(0, 3, n_runs),
        "config.e": rng.integers(0, 6, n_runs),
        "config.f": rng.integers(0, 2, n_runs),
        "config.g": rng.integers(0, 8, n_runs),
    })
    m = len(metrics)
    run = np.repeat(np.arange(n_runs), m * n_steps)
    metric = np.tile(np.repeat(np.arange(m), n_steps), n_runs)
    step = np.tile(np.arange(n_steps), n_runs * m)
    value = np.exp(-step / (n_steps / 3)) * (1 + run / n_runs) + rng.normal(0, 0.02, step.size)
    history = pl.DataFrame({
        "run_id": pl.Series(ids[run]).cast(pl.Categorical),
        "metric": pl.Series(np.array(metrics)[metric]).cast(pl.Categorical),
        "step": step.astype(np.int64),
        "value": value,
    })
    return rg.Runs(runs, history)
'''

#: Group-by choices cycled through: more than the widget keeps computed (`FRAME_CACHE`), so
#: each change is computed afresh; 2 to 10 groups each.
GROUPINGS = [
    "config.a",
    "config.b",
    "config.c",
    "group",
    "config.d",
    "config.e",
    "config.f",
    "config.g",
]

MEASURE_CHANGE = """
async ([selector, value]) => {
  const root = document.querySelector(selector);
  const probe = root.rungroupProbe;
  const select = root.querySelector("select.rg-group-by");
  const before = probe.renders;
  const chartsBefore = probe.charts;
  const frames = () =>
    new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  // resolves on the widget's probe event (no polling delay)
  const until = (done) =>
    new Promise((resolve) => {
      if (done()) return resolve();
      const check = () => {
        if (done()) {
          root.removeEventListener("rungroup-probe", check);
          resolve();
        }
      };
      root.addEventListener("rungroup-probe", check);
    });
  const started = performance.now();
  select.value = value;
  select.dispatchEvent(new Event("change", { bubbles: true }));
  await until(() => probe.charts > chartsBefore);
  const [sentAt, drawnAt] = probe.chartTimes;
  await frames();
  const charted = performance.now() - started;
  const drawnMs = drawnAt - started;
  await until(() => probe.renders > before && !root.classList.contains("rg-busy"));
  await frames();
  return {
    ms: charted,
    with_table_ms: performance.now() - started,
    bytes: probe.bytes,
    timings: probe.timings,
    embeds: probe.embedded,
    paint: probe.paintMs,
    phases: {
      ...probe.phases,
      before_request_ms: sentAt - started,
      frames_after_chart_ms: charted - drawnMs,
    },
    lines: probe.lines,
  };
}
"""

MEASURE_SCROLL = """
async (selector) => {
  const root = document.querySelector(selector);
  const viewport = root.querySelector(".rg-viewport");
  const frames = [];
  let maxRows = 0;
  let placeholders = 0;
  let last = performance.now();
  const step = 260;  // about ten rows per frame, a quick flick of the wheel
  while (viewport.scrollTop + viewport.clientHeight < viewport.scrollHeight - 1) {
    viewport.scrollTop += step;
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const now = performance.now();
    frames.push(now - last);
    last = now;
    maxRows = Math.max(maxRows, root.querySelectorAll(".rg-tr").length);
    placeholders += root.querySelectorAll(".rg-tr.rg-loading").length;
  }
  frames.sort((a, b) => a - b);
  const q = (p) => frames[Math.min(frames.length - 1, Math.floor(p * frames.length))];
  const lastRow = root.querySelector(".rg-tr:last-child");
  return {
    frames: frames.length,
    p50_ms: q(0.5),
    p95_ms: q(0.95),
    max_ms: frames[frames.length - 1],
    max_rows_in_dom: maxRows,
    placeholder_row_frames: placeholders,
    total_rows: root.rungroupProbe.total,
  };
}
"""


#: A jupyter_server config file that sets TCP_NODELAY on the kernel websockets (--nodelay).
NODELAY_CONFIG = """
from jupyter_server.services.kernels import websocket as _kernel_websocket

_open = _kernel_websocket.KernelWebsocketHandler.open


def _open_nodelay(self, *args, **kwargs):
    self.set_nodelay(True)
    return _open(self, *args, **kwargs)


_kernel_websocket.KernelWebsocketHandler.open = _open_nodelay
"""


#: The page's phases of a change, in order (see `MEASURE_CHANGE` and js/src/widget.ts).
PHASES = (
    "before_request_ms",
    "request_ms",
    "to_kernel_ms",
    "from_kernel_ms",
    "decode_ms",
    "vega_ms",
    "frames_after_chart_ms",
    "table_wait_ms",
    "table_ms",
)


#: The kernel's Python timings of a chart reply (the table's is `table_ms`).
CHART_PYTHON = ("groups_ms", "aggregate_ms", "chart_ms", "payload_ms")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _open(page: Any, server: Server, name: str, cells: list[str]) -> None:
    server.write_notebook(name, cells)
    open_lab(page, server.url, name)
    wait_render(page, 0, timeout=600_000)
    page.locator(WIDGET).scroll_into_view_if_needed()


def group_by_changes(
    page: Any, server: Server, n_runs: int, n_steps: int, repeats: int
) -> dict[str, Any]:
    _open(
        page,
        server,
        f"bench-groupby-{n_runs}-{n_steps}.ipynb",
        [
            SYNTHETIC,
            f"runs = synthetic({n_runs}, {n_steps}).collect()\n"
            'explorer = rg.Explorer(runs, group_by="config.a")\nexplorer',
        ],
    )
    samples = []
    for i in range(repeats + 1):
        value = GROUPINGS[(i + 1) % len(GROUPINGS)]
        result = page.evaluate(MEASURE_CHANGE, [WIDGET, value])
        if i > 0:  # the first change warms up the browser side
            samples.append(result)
    # back and forth between the last two groupings: computed frames are reused, so this is
    # the widget's and the browser's own cost (no engine)
    warm = []
    for i in range(repeats):
        value = GROUPINGS[(repeats + (i % 2)) % len(GROUPINGS)]
        warm.append(page.evaluate(MEASURE_CHANGE, [WIDGET, value]))
    warm_ms = [s["ms"] for s in warm]
    ms = [s["ms"] for s in samples]
    engine = [s["timings"].get("aggregate_ms", 0.0) for s in samples]
    rest = [s["timings"] for s in samples]
    return {
        "runs": n_runs,
        "steps": n_steps,
        "metrics": 4,
        "changes": len(samples),
        "p50_ms": _percentile(ms, 0.5),
        "p95_ms": _percentile(ms, 0.95),
        "with_table_p50_ms": _percentile([s["with_table_ms"] for s in samples], 0.5),
        "with_table_p95_ms": _percentile([s["with_table_ms"] for s in samples], 0.95),
        "engine_aggregate_p50_ms": _percentile(engine, 0.5),
        "browser_and_widget_p50_ms": _percentile(
            [m - e for m, e in zip(ms, engine, strict=True)], 0.5
        ),
        "chart_spec_p50_ms": _percentile([t.get("chart_ms", 0.0) for t in rest], 0.5),
        "payload_p50_ms": _percentile([t.get("payload_ms", 0.0) for t in rest], 0.5),
        "browser_paint_p50_ms": _percentile([s["paint"] for s in samples], 0.5),
        "browser_phases_p50_ms": {
            phase: _percentile([s["phases"].get(phase, 0) for s in samples], 0.5)
            for phase in PHASES
        },
        "python_chart_p50_ms": _percentile(
            [sum(t.get(k, 0.0) for k in CHART_PYTHON) for t in rest], 0.5
        ),
        "python_table_p50_ms": _percentile([t.get("table_ms", 0.0) for t in rest], 0.5),
        "reused_frame_p50_ms": _percentile(warm_ms, 0.5),
        "reused_frame_p95_ms": _percentile(warm_ms, 0.95),
        "reused_frame_paint_p50_ms": _percentile([s["paint"] for s in warm], 0.5),
        "reused_frame_phases_p50_ms": {
            phase: _percentile([s["phases"].get(phase, 0) for s in warm], 0.5) for phase in PHASES
        },
        "bytes_max": max(s["bytes"] for s in samples),
        "bytes_mean": statistics.fmean(s["bytes"] for s in samples),
        "re_embeds": samples[-1]["embeds"] - samples[0]["embeds"],
        "lines_last": samples[-1]["lines"],
    }


MEASURE_HOVER = """
async ([selector, moves]) => {
  const root = document.querySelector(selector);
  const probe = root.rungroupProbe;
  const times = [];
  let listed = 0;
  let hovered = 0;
  let last = "";
  for (let i = 0; i < moves; i++) {
    // across the panel, and up and down it, so that the hovered series changes too
    times.push(await probe.hoverAt((i * 0.618) % 1, (i * 0.382) % 1));
    listed = Math.max(listed, probe.tips);
    if (probe.hover !== last) hovered++;
    last = probe.hover;
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  return {
    moves, p50_ms: q(0.5), p95_ms: q(0.95), max_ms: times[times.length - 1],
    series_listed: listed, hover_changes: hovered,
  };
}
"""


def hover_moves(page: Any, server: Server, moves: int = 200) -> dict[str, Any]:
    """Pointer moves over a panel of 20 series x 400 points: the crosshair's rule and
    tooltip (every series at the nearest x) and, when the nearest series changes, the
    view's redraw of the emphasis, until drawn."""
    _open(
        page,
        server,
        "bench-hover.ipynb",
        [
            SYNTHETIC,
            'runs = synthetic(200, 1000, metrics=("loss",)).collect()\n'
            'explorer = rg.Explorer(runs, group_by=["config.a", "config.f"], points=400)\n'
            "explorer",
        ],
    )
    result: dict[str, Any] = page.evaluate(MEASURE_HOVER, [WIDGET, moves])
    result["series"] = page.evaluate(
        "(sel) => document.querySelectorAll(sel + ' .rg-legend-item').length", WIDGET
    )
    return result


def table_scroll(page: Any, server: Server) -> dict[str, Any]:
    _open(
        page,
        server,
        "bench-table.ipynb",
        [
            SYNTHETIC,
            'runs = synthetic(10_000, 10, metrics=("loss",)).collect()\n'
            "explorer = rg.Explorer(runs, grouping=False, points=2)\nexplorer",
        ],
    )
    result: dict[str, Any] = page.evaluate(MEASURE_SCROLL, WIDGET)
    return result


def screenshot(page: Any, server: Server, demo_dir: str | None, path: Path) -> None:
    """The README picture: the quickstart's Explorer on the demo runs, grouped by lr."""
    if not demo_dir:
        return
    _open(
        page,
        server,
        "screenshot.ipynb",
        [
            f"import rungroup as rg\nruns = rg.load({demo_dir!r})\n"
            'explorer = rg.Explorer(runs, group_by="config.lr", metrics=["val_acc", "val_loss"])'
            "\nexplorer",
        ],
    )
    page.mouse.move(0, 0)
    time.sleep(0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.locator(WIDGET).screenshot(path=str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12, help="group-by changes to time")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--demo-dir", help="demo runs for the README screenshot")
    parser.add_argument(
        "--screenshot", type=Path, default=ROOT / "docs" / "images" / "explorer.png"
    )
    parser.add_argument(
        "--skip-large", action="store_true", help="skip the 250 runs x 10,000 steps case"
    )
    parser.add_argument("--skip-table", action="store_true", help="skip the table scroll")
    parser.add_argument(
        "--nodelay",
        action="store_true",
        help="TCP_NODELAY on the server's kernel websockets (the widget's own cost)",
    )
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rungroup-bench-") as folder:
        root = Path(folder) / "served"
        root.mkdir()
        env = {}
        if args.nodelay:
            config = Path(folder) / "config"
            config.mkdir()
            (config / "jupyter_server_config.py").write_text(NODELAY_CONFIG)
            env["JUPYTER_CONFIG_PATH"] = str(config)
        figures["nodelay"] = args.nodelay
        with jupyter_server(root, Path(folder) / "jupyter", env) as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            blocked: list[str] = []

            def route(route: Any) -> None:
                host = route.request.url.split("/")[2].split(":")[0]
                if host in ("127.0.0.1", "localhost"):
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            page.route("**/*", route)
            figures["group_by_1000_steps"] = group_by_changes(
                page, server, 1000, 1000, args.repeats
            )
            print(json.dumps(figures["group_by_1000_steps"], indent=2), flush=True)
            if not args.skip_large:
                # bytes per update do not depend on the number of steps
                figures["group_by_10000_steps"] = group_by_changes(
                    page, server, 250, 10_000, max(3, args.repeats // 4)
                )
                print(json.dumps(figures["group_by_10000_steps"], indent=2), flush=True)
            figures["hover_20_series"] = hover_moves(page, server)
            print(json.dumps(figures["hover_20_series"], indent=2), flush=True)
            if not args.skip_table:
                figures["scroll_10000_runs"] = table_scroll(page, server)
                print(json.dumps(figures["scroll_10000_runs"], indent=2), flush=True)
            screenshot(page, server, args.demo_dir, args.screenshot)
            figures["blocked_requests"] = blocked
            browser.close()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
