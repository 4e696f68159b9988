"""Fixtures of the widget's tests: six runs in two lr groups, and an Explorer of them."""

from __future__ import annotations

import pytest
from widget_helpers import make_runs

from rungroup.runs import Runs
from rungroup.widget import Explorer


@pytest.fixture
def runs() -> Runs:
    return make_runs()


@pytest.fixture
def widget(runs: Runs) -> Explorer:
    return Explorer(runs)
