"""`Workspace`: one grouping per group-by setting shared by the table and the aggregation,
what it keeps and for how long, and the engine's one implementation of final values."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from engine_helpers import assert_same_frames, make_runs
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from test_engine_grouping import sample

import rungroup as rg
from rungroup.engine import final_values, workspace
from rungroup.engine.grouping import Grouping, _group_runs, group_runs, without_hidden
from rungroup.engine.recipe import recipe_of
from rungroup.engine.workspace import Workspace
from rungroup.runs import Runs

IDS = ["a", "b", "c", "d"]


def assert_same_grouping(got: Grouping, expected: Grouping) -> None:
    assert got.key_columns == expected.key_columns
    assert got.key_schema == expected.key_schema
    for name in ("runs", "members", "series"):
        assert_frame_equal(getattr(got, name), getattr(expected, name), check_exact=True)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([("group",), ("tags",), ("config.lr",), ("group", "config.lr"), ("name",)]),
    st.booleans(),
    st.booleans(),
    st.sets(st.sampled_from([*IDS, "nobody"])),
)
def test_hidden_runs_left_out_of_the_grouping_of_every_run_equal_a_grouping_without_them(
    group_by: tuple[str, ...], grouping: bool, reverse: bool, hidden: set[str]
) -> None:
    """Repeated labels (two runs named alpha), null keys, tags, every run hidden, unknown ids."""
    runs = sample()
    view = rg.View(group_by=group_by, grouping=grouping, reverse=reverse, hidden=hidden)
    everyone = _group_runs(runs, view.replace(hidden=frozenset()))
    shown = runs.select_ids([i for i in runs.ids if i not in hidden])
    expected = _group_runs(shown, view.replace(hidden=frozenset()))
    assert_same_grouping(without_hidden(everyone, runs, view), expected)
    assert_same_grouping(group_runs(runs, view), expected)


def test_one_grouping_per_group_by_setting_serves_the_table_and_the_aggregation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Any] = []
    original = workspace._group_runs

    def counting(runs: Runs, view: rg.View) -> Grouping:
        made.append(view)
        return original(runs, view)

    monkeypatch.setattr(workspace, "_group_runs", counting)
    runs = sample()
    space = Workspace(runs)
    view = rg.View(group_by="group", hidden={"a"})
    table = space.grouping(view, hidden=False)
    space.aggregate(view)
    space.aggregate_drawn(view.replace(hidden=frozenset({"b", "c"}), band="minmax"))
    space.summarize(view)
    assert len(made) == 1  # grouped once; hidden runs are a mask on it
    assert space.grouping(view.replace(hidden=frozenset()), hidden=False) is table
    assert set(table.runs["run_id"]) == set(IDS)  # the table lists hidden runs too
    assert set(space.grouping(view).runs["run_id"]) == {"b", "c", "d"}
    space.aggregate(view.replace(group_by=("config.lr",)))
    assert len(made) == 2


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"group_by": "tags", "hidden": {"a"}},
        {"grouping": False, "band": "minmax"},
        {"align": "bucket", "points": 2},
        {"x": "time", "band": "ci", "ci_method": "bootstrap", "bootstrap_samples": 50},
        {"smoothing": "ema", "smoothing_param": 0.5},
    ],
)
def test_a_workspace_gives_the_frames_of_the_functions(fields: dict[str, Any]) -> None:
    runs = sample()
    space = Workspace(runs)
    for _ in range(2):  # made, then from what was kept
        frame = space.aggregate(**fields)
        assert_same_frames(frame, rg.aggregate(runs, **fields))
        assert recipe_of(frame) == rg.View(**fields)
        view = rg.View(**fields)
        drawn = space.aggregate_drawn(view)
        assert drawn.equals(frame.select(drawn.columns))
        assert space.summarize(view, reduce="max").equals(rg.summarize(runs, view, reduce="max"))


def test_errors_name_the_valid_choices_as_the_functions_do() -> None:
    space = Workspace(sample())
    with pytest.raises(ValueError, match=r"unknown group_by column\(s\) 'lr'"):
        space.aggregate(group_by="lr")
    with pytest.raises(ValueError, match=r"unknown metric\(s\) 'nope'; valid metrics: acc, loss"):
        space.aggregate(metrics="nope", group_by="lr")  # metrics are checked first
    with pytest.raises(TypeError, match="Workspace\\(\\) takes a rungroup Runs"):
        Workspace("runs")  # type: ignore[arg-type]


def test_the_recipe_lives_with_the_frame_and_not_with_frames_made_from_it() -> None:
    frame = rg.aggregate(sample(), band="ci")
    assert recipe_of(frame) == rg.View(band="ci")
    assert recipe_of(frame.filter(pl.col("n") > 0)) is None
    assert recipe_of(frame.clone()) is None
    assert recipe_of(pl.DataFrame({"a": [1]})) is None


def reference_final_values(runs: Runs) -> dict[tuple[str, str], float | None]:
    """Each (run, metric)'s value at its largest step, the last logged of ties; a null step
    counts as the smallest: a plain loop over the rows in logged order."""
    best: dict[tuple[str, str], tuple[float, float | None]] = {}
    for run_id, metric, step, value in (
        runs.history.collect()
        .select(pl.col("run_id").cast(pl.String), pl.col("metric").cast(pl.String), "step", "value")
        .iter_rows()
    ):
        position = -np.inf if step is None else step
        if (run_id, metric) not in best or position >= best[(run_id, metric)][0]:
            best[(run_id, metric)] = (position, value)
    return {key: value for key, (_, value) in best.items()}


def test_final_values_are_the_last_logged_values() -> None:
    history = [
        ("a", "loss", 0, 1.0),
        ("a", "loss", 2, 3.0),
        ("a", "loss", 1, 2.0),  # logged later at a smaller step: not the last
        ("b", "loss", 5, 1.0),
        ("b", "loss", 5, 4.0),  # the same step again: the last logged wins
        ("b", "acc", 0, float("nan")),
    ]
    runs = make_runs([{"id": "a"}, {"id": "b"}, {"id": "c"}], history)
    frame = final_values(runs, prefix="m:")
    assert frame.columns == ["id", "m:acc", "m:loss"]
    expected = reference_final_values(runs)
    for row in frame.iter_rows(named=True):
        for metric in ("acc", "loss"):
            want = expected.get((row["id"], metric))
            got = row[f"m:{metric}"]
            assert (got is None and want is None) or np.isclose(got, want, equal_nan=True)
    assert frame.row(2) == ("c", None, None)  # logged nothing
    assert Workspace(runs).final_values(prefix="m:").equals(frame)


def test_live_extension_keeps_final_values_and_matrices_equal_to_fresh_ones() -> None:
    first = [("a", "loss", s, float(s)) for s in range(5)]
    later = [("a", "loss", 5, 9.0), ("b", "loss", 0, 2.0)]
    runs = make_runs([{"id": "a", "group": "x"}], first)
    space = Workspace(runs)
    space.final_values()
    space.aggregate(group_by="group")
    grown = make_runs([{"id": "a", "group": "x"}, {"id": "b", "group": "x"}], first + later)
    appended = grown.history.collect().tail(len(later))
    live = space.extended(grown, appended)
    assert live.final_values().equals(final_values(grown))
    assert_same_frames(live.aggregate(group_by="group"), rg.aggregate(grown, group_by="group"))
    assert live.runs is grown and space.runs is runs


def test_reverse_grouping_over_thousands_of_config_keys() -> None:
    """Reverse grouping by 3,000 config keys, three of which vary, forms the series that
    grouping by the three gives, with every key in the key columns."""
    n_runs, n_keys = 40, 3000
    rng = np.random.default_rng(1)
    columns: dict[str, Any] = {"id": [f"r{i:03d}" for i in range(n_runs)]}
    varying = {"config.k0000", "config.k1000", "config.k2999"}
    for k in range(n_keys):
        name = f"config.k{k:04d}"
        columns[name] = rng.integers(0, 2, n_runs) if name in varying else np.zeros(n_runs, int)
    runs = Runs(
        pl.DataFrame(columns),
        pl.DataFrame({"run_id": ["r000"], "metric": ["loss"], "step": [0], "value": [1.0]}),
    )
    reverse = Workspace(runs).grouping(rg.View(group_by=(), reverse=True))
    direct = group_runs(runs, rg.View(group_by=tuple(sorted(varying))))
    assert len(reverse.key_columns) == n_keys
    assert_frame_equal(reverse.members, direct.members)
    assert reverse.series.height == direct.series.height
    assert reverse.series["series"][0].count(" / ") == n_keys - 1


def test_the_engine_package_gives_its_functions_not_its_submodules() -> None:
    import importlib

    from rungroup import engine

    for name in ("aggregate", "summarize"):  # the submodules imported: still the functions
        module = importlib.import_module(f"rungroup.engine.{name}")
        assert getattr(engine, name) is getattr(module, name)
    assert engine.Workspace is Workspace and engine.final_values is final_values
