"""End-to-end fixtures: one JupyterLab (also serving Notebook 7) on 127.0.0.1 for the session,
Debian's chromium driven by Playwright, every non-loopback request blocked and recorded, and
console errors collected so that a test fails on any of them.

Set RUNGROUP_DEMO_DIR to reuse demo runs already trained (else they are trained once, ~40 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Browser tests never skip: a missing driver or browser is a failure (`make test` installs both).
import playwright.sync_api as playwright_sync
import pytest
from tests.e2e.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Server,
    Watch,
    assert_clean,
    jupyter_server,
    watched_page,
)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


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


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Any, watch: Watch, request: pytest.FixtureRequest) -> Iterator[Any]:
    with watched_page(browser, watch, request.node.name) as page:
        yield page
    assert_clean(watch)
