"""End-to-end fixtures: one JupyterLab (also serving Notebook 7) on 127.0.0.1 for the session,
Debian's chromium driven by Playwright, every non-loopback request blocked and recorded, and
console errors collected so that a test fails on any of them.

Set RUNGROUP_DEMO_DIR to reuse demo runs already trained (else they are trained once, ~40 s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# Browser tests never skip: a missing driver or browser is a failure (`make test` installs both).
import playwright.sync_api as playwright_sync
import pytest
from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, Server, Watch, jupyter_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


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
    with jupyter_server(
        root, tmp_path_factory.mktemp("jupyter"), {"RUNGROUP_DEMO_DIR": str(demo_dir)}
    ) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: `make chromium` installs Debian's package")
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
