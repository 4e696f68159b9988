"""Driving the Explorer in JupyterLab / Notebook 7 from Playwright."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
WIDGET = ".rungroup-explorer"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


CHROMIUM = os.environ.get("RUNGROUP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def jupyter_server(root: Path, state: Path, env: dict[str, str]) -> Iterator[Server]:
    """JupyterLab (which also serves Notebook 7) on 127.0.0.1, token off, serving `root`;
    its runtime files, settings and log go under `state`. Stopped on exit."""
    runtime, settings, workspaces = state / "runtime", state / "settings", state / "workspaces"
    notifications = settings / "@jupyterlab" / "apputils-extension"
    notifications.mkdir(parents=True, exist_ok=True)
    runtime.mkdir(exist_ok=True)
    workspaces.mkdir(exist_ok=True)
    # No announcements, no update checks: the server must not go online either.
    (notifications / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port = _free_port()
    full_env = {
        **os.environ,
        **env,
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(workspaces),
        "PYTHONWARNINGS": "ignore",
    }
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "jupyter-server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "lab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                "--ServerApp.token=",
                "--ServerApp.password=",
                "--ServerApp.disable_check_xsrf=True",
                "--ServerApp.open_browser=False",
                f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True",
                "--JupyterNotebookApp.expose_app_in_browser=True",
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly",
                "--allow-root",
            ],
            cwd=root,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; see {log}")
                time.sleep(0.3)
            yield Server(url=url, root=root, runtime=runtime)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def open_lab(page: Any, url: str, notebook: str, theme: str | None = None) -> None:
    """Open `notebook` in JupyterLab, wait for its kernel, run every cell."""
    page.goto(f"{url}/lab/tree/{notebook}?reset")  # only this notebook, no restored tabs
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    if theme:
        set_theme(page, theme)
    wait_kernel_idle(page)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def open_notebook7(page: Any, url: str, notebook: str) -> None:
    page.goto(f"{url}/notebooks/{notebook}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    wait_kernel_idle(page)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def wait_kernel_idle(page: Any) -> None:
    page.wait_for_function(
        """() => {
            const widget = window.jupyterapp.shell.currentWidget;
            const kernel = widget && widget.sessionContext && widget.sessionContext.session
                && widget.sessionContext.session.kernel;
            return kernel && kernel.status === 'idle';
        }""",
        timeout=60_000,
    )


def set_theme(page: Any, theme: str) -> None:
    page.evaluate(
        "(theme) => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme
    )
    light = "true" if "Light" in theme else "false"
    page.wait_for_function(
        "(light) => document.body.dataset.jpThemeLight === light", arg=light, timeout=20_000
    )


def probe(page: Any) -> dict[str, Any]:
    """The widget's test probe (`element.rungroupProbe`, docs/widget.md): counters and
    measurements the widget records after each repaint."""
    value = page.eval_on_selector(WIDGET, "el => el.rungroupProbe")
    assert isinstance(value, dict), "the widget has no probe: is it rendered?"
    return value


def renders(page: Any) -> int:
    return int(probe(page)["renders"])


def wait_render(page: Any, after: int, timeout: float = 30_000) -> int:
    """Wait until the widget finished a repaint after render number `after` (0: the first)."""
    page.wait_for_function(
        "([selector, after]) => { const el = document.querySelector(selector);"
        " return el && el.rungroupProbe && el.rungroupProbe.renders > after"
        " && !el.classList.contains('rg-busy'); }",
        arg=[WIDGET, after],
        timeout=timeout,
    )
    # let the change settle (a burst of trait changes can cause a second repaint)
    time.sleep(0.15)
    page.wait_for_function(
        "(selector) => !document.querySelector(selector).classList.contains('rg-busy')",
        arg=WIDGET,
    )
    return renders(page)


def count(page: Any, selector: str) -> int:
    return int(page.eval_on_selector_all(f"{WIDGET} {selector}", "els => els.length"))


def chart_counts(page: Any) -> tuple[int, int]:
    """(lines, bands) drawn by the widget's series canvas, per series and panel, as it
    recorded them in its last drawing. Every line point is drawn where its value puts it:
    in order with its neighbours and inside its panel (the scales follow the new data)."""
    drawn = probe(page)
    misplaced = drawn["misplaced"]
    assert misplaced == 0, f"{misplaced} line points drawn for other values than theirs"
    return int(drawn["lines"]), int(drawn["bands"])


def act(page: Any, action: Any) -> int:
    """Do `action()` and wait for the repaint it causes; return the new render count."""
    before = renders(page)
    action()
    return wait_render(page, before)


@dataclass
class Server:
    url: str
    root: Path
    runtime: Path

    def write_notebook(self, name: str, cells: list[str]) -> str:
        """Write a notebook of code cells (from strings) into the served folder."""
        import nbformat

        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        for i, cell in enumerate(notebook.cells):
            cell["id"] = f"cell-{i}"
        notebook.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(notebook, self.root / name)
        return name


@dataclass
class Watch:
    """What the page did that it must not: requests off this machine, console errors."""

    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    #: Script origins whose own page errors are not ours to fail on (recorded in `ignored`).
    foreign: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


class Kernel:
    """Evaluate Python expressions in the kernel behind the open notebook."""

    def __init__(self, server: Server, kernel_id: str) -> None:
        from jupyter_client import BlockingKernelClient

        self.client = BlockingKernelClient(
            connection_file=str(server.runtime / f"kernel-{kernel_id}.json")
        )
        self.client.load_connection_file()
        self.client.start_channels()

    def eval(self, expression: str, timeout: float = 30) -> Any:
        """`ast.literal_eval` of the repr of `expression` evaluated in the kernel."""
        msg_id = self.client.execute(
            "", silent=True, store_history=False, user_expressions={"value": expression}
        )
        deadline = time.monotonic() + timeout
        while True:
            reply = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        result = reply["content"]["user_expressions"]["value"]
        if result.get("status") != "ok":
            raise AssertionError(f"{expression!r} failed in the kernel: {result}")
        return ast.literal_eval(result["data"]["text/plain"])

    def run(self, code: str, timeout: float = 30) -> None:
        reply = self.client.execute_interactive(code, silent=True, timeout=timeout)
        assert reply["content"]["status"] == "ok", reply["content"]

    def close(self) -> None:
        self.client.stop_channels()


def kernel_for(server: Server, notebook: str) -> Kernel:
    with urllib.request.urlopen(f"{server.url}/api/sessions", timeout=5) as response:
        sessions = json.load(response)
    for session in sessions:
        if session.get("path", "").endswith(notebook):
            return Kernel(server, session["kernel"]["id"])
    raise AssertionError(f"no kernel session for {notebook}: {sessions}")


def _is_loopback(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "about"):
        return True
    return parsed.hostname in LOOPBACK


@contextlib.contextmanager
def watched_page(browser: Any, watch: Watch, name: str) -> Iterator[Any]:
    """A new browser page whose off-machine requests, console errors and dialogs go to
    `watch`; a screenshot of it is kept as test-artifacts/last-<name>.png."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)

    def route(route: Any) -> None:
        url = route.request.url
        if _is_loopback(url):
            route.continue_()
        else:
            watch.blocked.append(url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on(
        "console",
        lambda message: watch.errors.append(message.text) if message.type == "error" else None,
    )

    def page_error(error: Any) -> None:
        stack = str(getattr(error, "stack", "") or "")
        first_frame = next((line for line in stack.splitlines() if " at " in line), "")
        if any(origin in first_frame for origin in watch.foreign):
            watch.ignored.append(f"{error} ({first_frame.strip()})")
        else:
            watch.errors.append(f"page error: {error} {first_frame.strip()}")

    page.on("pageerror", page_error)

    def dialog(dialog: Any) -> None:
        watch.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dialog)
    try:
        yield page
    finally:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(ARTIFACTS / f"last-{name}.png"))
        context.close()


def assert_clean(watch: Watch) -> None:
    """Fail on what the page did that it must not."""
    assert watch.blocked == [], f"requests off this machine were attempted: {watch.blocked}"
    assert watch.errors == [], f"browser console errors: {watch.errors}"
    assert watch.dialogs == [], f"dialogs opened (script ran?): {watch.dialogs}"
