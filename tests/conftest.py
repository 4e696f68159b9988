"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Session- and module-scoped fixtures that load run before any autouse fixture: they get a
    cache folder of their own too, so the suite never writes into the home folder."""
    os.environ["RUNGROUP_CACHE_DIR"] = tempfile.mkdtemp(prefix="rungroup-test-cache-")


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own empty columnar cache, never the real one in the home folder
    (child processes inherit it through the environment)."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("RUNGROUP_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo store (real training), made once per test session.

    Set RUNGROUP_TEST_DEMO_DIR to reuse an existing demo store while iterating locally.
    """
    existing = os.environ.get("RUNGROUP_TEST_DEMO_DIR")
    if existing:
        return Path(existing)
    from rungroup.demo import create_demo_runs

    return create_demo_runs(tmp_path_factory.mktemp("demo") / "runs")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in this thread
    until the session ends, and unit tests that drive the widget's own timers on an asyncio
    loop cannot run while it does."""
    items.sort(key=lambda item: "e2e" in item.path.parts)
