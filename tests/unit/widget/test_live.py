"""Live mode of rungroup.Explorer without a browser: polls driven by calling `_tick()`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from traitlets import TraitError
from widget_helpers import make_runs

import rungroup as rg
from rungroup.widget import Explorer


def write(run: Any, start: int, stop: int) -> None:
    for step in range(start, stop):
        run.log({"loss": 1.0 / (step + 1), "acc": step / 100}, step=step)
    run._flush()


def states(widget: Explorer) -> dict[str, str]:
    return dict(widget.runs.runs.select("id", "state").iter_rows())


def data_reply(widget: Explorer, spec_key: str | None = None) -> tuple[dict[str, Any], list[bytes]]:
    reply, buffers = widget.handle({"kind": "data", "id": 1, "spec_key": spec_key})
    assert reply["ok"], reply
    return reply, buffers


def table_reply(widget: Explorer) -> dict[str, Any]:
    reply, _ = widget.handle({"kind": "table", "id": 2, "limit": 100})
    assert reply["ok"], reply
    return reply


@pytest.fixture(autouse=True)
def event_loop_for_timers() -> Any:
    """The kernel's loop in a notebook; a fresh one (never run) here: timers only queue."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


def test_live_polls_grow_the_runs_and_change_states(tmp_path: Path) -> None:
    first = rg.init(dir=tmp_path, project="p", group="g", config={"lr": 0.1})
    write(first, 0, 10)
    widget = Explorer(tmp_path, live=True, refresh_interval=0.5, group_by=["config.lr"])
    assert widget.live and widget.followable and widget.refresh_interval == 0.5
    assert widget._live.timer is not None  # the next poll is queued on the event loop
    assert len(widget.runs) == 1 and states(widget) == {first.id: "running"}
    points = widget.aggregated.height
    reply, _ = data_reply(widget)
    spec_key = reply["spec_key"]
    revision = widget.revision

    # nothing written: a poll changes nothing and the browser is not asked to refresh
    widget._tick()
    assert widget.polls == 1 and widget.revision == revision
    assert widget.last_poll["changed"] == 0.0

    # new steps extend the line, a new run appears in its own group
    write(first, 10, 30)
    second = rg.init(dir=tmp_path, project="p", group="g", config={"lr": 0.2})
    write(second, 0, 5)
    widget._tick()
    assert widget.revision == revision + 1
    assert len(widget.runs) == 2
    assert widget.aggregated.height > points
    assert set(widget.aggregated["series"].to_list()) == {"0.1", "0.2"}
    assert widget.aggregated.filter(pl.col("series") == "0.1")["x"].max() == 29
    reply, _ = data_reply(widget, spec_key)
    assert reply["spec"] is None  # same shape: the browser keeps its Vega view, new data only
    table = table_reply(widget)
    assert table["table"]["total"] == 2 and table["runs"] == 2

    # states change: finished and failed
    first.finish()
    second.finish(exit_code=1)
    widget._tick()
    assert states(widget) == {first.id: "finished", second.id: "failed"}
    assert widget._live.timer is not None

    # the widget's settings survive a refresh
    widget.update(hidden=[second.id], expanded=["0.1"], focus="0.1")
    third = rg.init(dir=tmp_path, project="p", group="g", config={"lr": 0.1})
    write(third, 0, 3)
    widget._tick()
    assert widget.hidden == [second.id] and widget.expanded == ["0.1"] and widget.focus == "0.1"
    assert widget.selected_runs == [first.id, third.id]
    third.finish()


def test_live_false_cancels_the_timer_and_no_poll_happens(tmp_path: Path) -> None:
    run = rg.init(dir=tmp_path, project="p")
    write(run, 0, 3)
    widget = Explorer(tmp_path, live=True)
    timer = widget._live.timer
    assert timer is not None
    widget.live = False
    assert widget._live.timer is None and timer.cancelled()
    write(run, 3, 6)
    widget._tick()  # a tick that was already due does nothing once live is off
    assert widget.polls == 0
    assert widget.runs.history.select(pl.len()).collect().item() == 6
    widget.live = True  # on again: the follower goes on from where it was
    assert widget._live.timer is not None
    widget._tick()
    assert widget.polls == 1
    assert widget.runs.history.select(pl.len()).collect().item() == 12
    run.finish()


def test_close_stops_polling(tmp_path: Path) -> None:
    rg.init(dir=tmp_path, project="p").finish()
    widget = Explorer(tmp_path, live=True)
    timer = widget._live.timer
    assert timer is not None
    widget.close()
    assert timer.cancelled() and widget._live.timer is None
    widget._tick()
    assert widget.polls == 0


def test_the_timer_runs_on_the_event_loop(
    tmp_path: Path, event_loop_for_timers: asyncio.AbstractEventLoop
) -> None:
    run = rg.init(dir=tmp_path, project="p")
    write(run, 0, 3)
    widget = Explorer(tmp_path, live=True, refresh_interval=0.2)
    write(run, 3, 5)

    async def wait() -> None:
        await asyncio.sleep(0.5)

    event_loop_for_timers.run_until_complete(wait())
    assert widget.polls >= 1
    assert widget.runs.history.select(pl.len()).collect().item() == 10
    widget.live = False
    polls = widget.polls
    event_loop_for_timers.run_until_complete(wait())
    assert widget.polls == polls
    run.finish()


def test_live_needs_a_source_to_follow(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="live=True needs a source to follow"):
        Explorer(make_runs(), live=True)
    widget = Explorer(make_runs())
    assert not widget.followable
    with pytest.raises(TraitError, match="needs a source to follow"):
        widget.live = True
    with pytest.raises(ValueError, match="needs a source to follow"):
        widget.refresh()


def test_refresh_interval_is_validated(tmp_path: Path) -> None:
    rg.init(dir=tmp_path, project="p").finish()
    with pytest.raises(ValueError, match=r"at least 0\.2"):
        Explorer(tmp_path, refresh_interval=0.01)
    widget = Explorer(tmp_path)
    assert widget.refresh_interval == 2.0 and not widget.live
    with pytest.raises(TraitError, match=r"at least 0\.2"):
        widget.refresh_interval = 0.1
    widget.update(live=True, refresh_interval=1.0)
    assert widget.live and widget._live.timer is not None
    widget.refresh_interval = 3.0  # rescheduled with the new interval
    assert widget._live.timer is not None
    widget.close()


def test_a_store_that_starts_empty_fills_up(tmp_path: Path) -> None:
    widget = Explorer(tmp_path, live=True)
    assert len(widget.runs) == 0
    run = rg.init(dir=tmp_path, project="p", group="g")
    write(run, 0, 4)
    widget._tick()
    assert len(widget.runs) == 1 and widget.info["metrics"] == ["acc", "loss"]
    assert widget.aggregated.height == 8
    run.finish()


def test_a_failed_poll_is_shown_and_polling_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = rg.init(dir=tmp_path, project="p")
    write(run, 0, 3)
    widget = Explorer(tmp_path, live=True)
    follower = widget._live.follower
    assert follower is not None

    def broken() -> Any:
        raise OSError("disk gone")

    monkeypatch.setattr(follower, "poll", broken)
    widget._tick()
    assert widget.error == "OSError: disk gone"
    assert widget.live and widget._live.timer is not None
    monkeypatch.undo()
    write(run, 3, 5)
    widget._tick()
    assert widget.error == ""  # readable again
    assert table_reply(widget)["runs"] == 1
    run.finish()
