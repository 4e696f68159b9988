"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
