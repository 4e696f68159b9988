"""End-to-end fixtures: one JupyterLab (also serving Notebook 7) on 127.0.0.1 for the session,
Debian's chromium driven by Playwright, every non-loopback request blocked and recorded, and
console errors collected so that a test fails on any of them.

Set RUNGROUP_DEMO_DIR to reuse demo runs already trained (else they are trained once, ~40 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from tests.e2e.helpers import Server, Watch

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
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
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

playwright_sync = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("RUNGROUP_DEMO_DIR")
    if given and Path(given).is_dir():
        return Path(given).resolve()
    target = tmp_path_factory.mktemp("demo") / "demo-runs"
    subprocess.run(
        [sys.executable, "-m", "rungroup", "demo", str(target)], check=True, cwd=ROOT, timeout=300
    )
    return target


@pytest.fixture(scope="session")
def jupyter(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("served")
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, root / notebook.name)
    runtime = tmp_path_factory.mktemp("runtime")
    settings = tmp_path_factory.mktemp("lab-settings")
    port = _free_port()
    env = {
        **os.environ,
        "RUNGROUP_DEMO_DIR": str(demo_dir),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path_factory.mktemp("workspaces")),
        "PYTHONWARNINGS": "ignore",
    }
    # No announcements, no update checks: the server must not go online either.
    (settings / "@jupyterlab").mkdir(parents=True, exist_ok=True)
    (settings / "@jupyterlab" / "apputils-extension").mkdir(exist_ok=True)
    (
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    ).write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
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
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _is_loopback(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "about"):
        return True
    return parsed.hostname in LOOPBACK


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Any, watch: Watch, request: pytest.FixtureRequest) -> Iterator[Any]:
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
    yield page
    with contextlib.suppress(Exception):
        page.screenshot(path=str(ARTIFACTS / f"last-{request.node.name}.png"))
    context.close()
    assert watch.blocked == [], f"requests off this machine were attempted: {watch.blocked}"
    assert watch.errors == [], f"browser console errors: {watch.errors}"
    assert watch.dialogs == [], f"dialogs opened (script ran?): {watch.dialogs}"
