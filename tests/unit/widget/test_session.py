"""A widget's session: what it keeps, when it drops it, and that no two widgets share anything."""

from __future__ import annotations

from typing import Any

import pytest
from widget_helpers import make_runs

from rungroup.view import View
from rungroup.widget import Explorer
from rungroup.widget import session as session_module
from rungroup.widget.session import FRAME_CACHE, Session


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The specs built (with Altair) from now on."""
    made: list[Any] = []
    build = session_module.widget_spec

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(args[1])
        return build(*args, **kwargs)

    monkeypatch.setattr(session_module, "widget_spec", counting)
    return made


def test_two_widgets_share_no_cache(builds: list[Any]) -> None:
    runs = make_runs()
    first, second = Explorer(runs), Explorer(runs)
    assert first.spec == second.spec
    assert len(builds) == 2  # each widget built its own
    assert first.aggregated is not second.aggregated
    first.runs = make_runs(n_steps=5)  # one widget's runs change; the other's frames stay
    assert first.aggregated["x"].max() == 4
    assert second.aggregated["x"].max() == 19


def test_frames_are_kept_per_setting_and_the_oldest_dropped() -> None:
    session = Session(make_runs())
    views = [View(points=p) for p in range(10, 10 + FRAME_CACHE + 1)]
    first = session.frame(views[0], "", "")
    assert session.frame(views[0], "", "") is first
    for view in views[1:]:
        session.frame(view, "", "")
    assert session.frame(views[-1], "", "") is session.frame(views[-1], "", "")
    assert session.frame(views[0], "", "") is not first  # pushed out by FRAME_CACHE others


def test_new_runs_drop_frames_table_and_last_values_but_keep_specs(builds: list[Any]) -> None:
    session = Session(make_runs())
    view = View(group_by=("config.lr",))
    frame = session.frame(view, "", "")
    table = session.table(frame, "", [], [], [])
    assert session.table(frame, "", [], [], []) is table
    assert session.table(frame, "", ["name", "desc"], [], []) is not table
    finals = session.finals()
    session.replace_runs(make_runs(n_steps=5))
    again = session.frame(view, "", "")
    assert again is not frame and again.drawn["x"].max() == 4
    assert session.finals() is not finals
    assert session.finals()["m:loss"].to_list() != finals["m:loss"].to_list()
    assert len(builds) == 1  # the same shape: the spec kept
