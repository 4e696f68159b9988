"""Grouping, the x axis, errors and empty selections of aggregate()."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import polars as pl
import pytest
from engine_helpers import make_runs

import rungroup as rg
from rungroup.engine.aggregate import VALUE_COLUMNS


def sample() -> rg.Runs:
    runs = [
        {
            "id": "a",
            "name": "alpha",
            "group": "g1",
            "tags": ["t1", "t2"],
            "config.lr": 0.1,
            "config.seed": 0,
            "state": "finished",
        },
        {
            "id": "b",
            "name": "beta",
            "group": "g1",
            "tags": ["t2"],
            "config.lr": 0.1,
            "config.seed": 1,
            "state": "finished",
        },
        {
            "id": "c",
            "name": "gamma",
            "group": "g2",
            "tags": [],
            "config.lr": 0.01,
            "config.seed": 0,
            "state": "failed",
        },
        {
            "id": "d",
            "name": "alpha",
            "group": None,
            "tags": ["t1"],
            "config.lr": None,
            "config.seed": 1,
            "state": "running",
        },
    ]
    values = {"a": 1.0, "b": 2.0, "c": 4.0, "d": 8.0}
    points = [
        (r, m, s, values[r] * (s + 1)) for r in values for m in ("loss", "acc") for s in range(3)
    ]
    return make_runs(runs, points)


def line_at(frame: pl.DataFrame, series: str, x: float = 0.0, metric: str = "loss") -> tuple:
    row = frame.filter(
        (pl.col("series") == series) & (pl.col("x") == x) & (pl.col("metric") == metric)
    )
    return tuple(row.select("n", "mean").row(0))


def test_group_by_group_with_a_missing_group():
    frame = rg.aggregate(sample(), metrics="loss")
    assert frame.columns == ["group", *VALUE_COLUMNS]
    assert frame["series"].unique(maintain_order=True).to_list() == ["g1", "g2", "(missing)"]
    assert line_at(frame, "g1") == (2, 1.5)
    assert line_at(frame, "(missing)") == (1, 8.0)
    assert frame.filter(pl.col("series") == "(missing)")["group"].null_count() == 3


def test_tags_put_a_run_in_each_of_its_tag_groups():
    frame = rg.aggregate(sample(), metrics="loss", group_by="tags")
    assert line_at(frame, "t1") == (2, (1.0 + 8.0) / 2)  # a and d
    assert line_at(frame, "t2") == (2, (1.0 + 2.0) / 2)  # a and b
    assert line_at(frame, "(missing)") == (1, 4.0)  # c has no tags
    assert frame.schema["tags"] == pl.String


def test_nested_groups():
    frame = rg.aggregate(sample(), metrics="loss", group_by=("group", "config.lr"))
    assert frame.columns[:2] == ["group", "config.lr"]
    assert set(frame["series"]) == {"g1 / 0.1", "g2 / 0.01", "(missing) / (missing)"}
    assert frame.schema["config.lr"] == pl.Float64


def test_reverse_groups_by_every_other_config_key():
    frame = rg.aggregate(sample(), metrics="loss", group_by="config.seed", reverse=True)
    assert frame.columns[0] == "config.lr"
    assert line_at(frame, "0.1") == (2, 1.5)  # seeds 0 and 1 of lr 0.1 fall together
    assert set(frame["series"]) == {"0.1", "0.01", "(missing)"}


def run_columns_sample() -> tuple[list[dict], rg.Runs]:
    runs = [
        {"id": "a", "name": "n1", "job_type": "train", "state": "finished",
         "summary.best": 0.5, "config.lr": 0.1, "config.wd": 0.0, "config.seed": 0},
        {"id": "b", "name": "n1", "job_type": "train", "state": "failed",
         "summary.best": 0.5, "config.lr": 0.1, "config.wd": 0.0, "config.seed": 1},
        {"id": "c", "name": "n2", "job_type": "eval", "state": "finished",
         "summary.best": 0.7, "config.lr": 0.1, "config.wd": 0.1, "config.seed": 0},
        {"id": "d", "name": "n3", "job_type": None, "state": "finished",
         "summary.best": None, "config.lr": 0.2, "config.wd": 0.1, "config.seed": 1},
    ]  # fmt: skip
    values = {"a": 1.0, "b": 2.0, "c": 4.0, "d": 8.0}
    return runs, make_runs(runs, [(r, "loss", 0, v) for r, v in values.items()])


def label(value: object) -> str:
    return "(missing)" if value is None else str(value)


@pytest.mark.parametrize(
    "keys",
    [
        ("job_type",),
        ("name",),
        ("state",),
        ("summary.best",),
        ("job_type", "state", "config.lr"),
        ("config.lr", "config.wd", "config.seed", "name"),
    ],
)
def test_any_run_columns_group_at_any_depth(keys):
    runs, made = run_columns_sample()
    frame = rg.aggregate(made, metrics="loss", group_by=keys)
    assert frame.columns[: len(keys)] == list(keys)
    expected: dict[str, list[float]] = {}
    values = {"a": 1.0, "b": 2.0, "c": 4.0, "d": 8.0}
    for run in runs:
        series = " / ".join(label(run[k]) for k in keys)
        expected.setdefault(series, []).append(values[run["id"]])
    got = {row[0]: (row[1], row[2]) for row in frame.select("series", "n", "mean").rows()}
    assert got == {k: (len(v), sum(v) / len(v)) for k, v in expected.items()}


def test_reverse_leaves_out_every_named_key():
    _, made = run_columns_sample()
    frame = rg.aggregate(made, metrics="loss", group_by=("config.seed", "config.wd"), reverse=True)
    assert frame.columns[0] == "config.lr"
    got = {row[0]: (row[1], row[2]) for row in frame.select("series", "n", "mean").rows()}
    assert got == {"0.1": (3, 7.0 / 3), "0.2": (1, 8.0)}


def test_no_keys_is_one_group_of_all_runs():
    frame = rg.aggregate(sample(), metrics="loss", group_by=())
    assert line_at(frame, "(all runs)") == (4, 15.0 / 4)


def test_grouping_off_labels_by_name_and_disambiguates_repeats():
    frame = rg.aggregate(sample(), metrics="loss", grouping=False)
    assert frame.columns[0] == "run_id"
    labels = dict(frame.select("run_id", "series").unique().iter_rows())
    assert labels == {"a": "alpha (a)", "b": "beta", "c": "gamma", "d": "alpha (d)"}


def test_metrics_default_to_all_in_sorted_order_and_keep_asked_order():
    assert rg.aggregate(sample())["metric"].unique(maintain_order=True).to_list() == ["acc", "loss"]
    asked = rg.aggregate(sample(), metrics=("loss", "acc"))
    assert asked["metric"].unique(maintain_order=True).to_list() == ["loss", "acc"]


def test_x_time_timestamp_and_a_metric():
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    history = pl.DataFrame(
        {
            "run_id": ["a", "a", "a", "a", "b", "b"],
            "metric": ["loss", "epoch", "loss", "epoch", "loss", "epoch"],
            "step": [0, 0, 5, 5, 0, 0],
            "time": [0.0, 0.0, 2.5, 2.5, None, None],
            "timestamp": [
                start,
                start,
                start.replace(second=3),
                start.replace(second=3),
                None,
                None,
            ],
            "value": [1.0, 0.5, 3.0, 1.5, 7.0, 0.5],
        }
    )
    runs = rg.Runs(pl.DataFrame({"id": ["a", "b"], "group": ["g", "g"]}), history)
    by_time = rg.aggregate(runs, metrics="loss", x="time")
    assert by_time.select("x", "n").rows() == [(0.0, 1), (2.5, 1)]  # b has no times
    by_wall = rg.aggregate(runs, metrics="loss", x="timestamp")
    assert by_wall.schema["x"] == pl.Datetime("us", "UTC")
    assert by_wall["x"].to_list() == [start, start.replace(second=3)]
    by_epoch = rg.aggregate(runs, x="epoch")
    assert by_epoch["metric"].unique().to_list() == ["loss"]  # x metric left out of "all"
    assert by_epoch.select("x", "n", "mean").rows() == [(0.5, 2, 4.0), (1.5, 1, 3.0)]


def test_unknown_names_raise_errors_listing_the_valid_ones():
    runs = sample()
    with pytest.raises(ValueError, match=r"unknown metric\(s\) 'nope'; valid metrics: acc, loss"):
        rg.aggregate(runs, metrics="nope")
    with pytest.raises(ValueError, match=r"valid columns: project, group, job_type, name"):
        rg.aggregate(runs, group_by="config.nope")
    with pytest.raises(ValueError, match=r"x='nope' is not valid; choose one of: step, time"):
        rg.aggregate(runs, x="nope")
    with pytest.raises(ValueError, match="choose one of: mean, median, min, max, iqm"):
        rg.aggregate(runs, line="mode")
    with pytest.raises(TypeError, match="valid fields: metrics, group_by"):
        rg.aggregate(runs, colour="red")
    with pytest.raises(TypeError, match="takes a rungroup Runs"):
        rg.aggregate(pl.DataFrame())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"grouping": False},
        {"group_by": ("group", "config.lr")},
        {"x": "timestamp"},
        {"ci_method": "bootstrap", "smoothing": "ema"},
    ],
)
def test_empty_selection_returns_the_full_schema(fields):
    runs = sample()
    everyone = {"a", "b", "c", "d"}
    frame = rg.aggregate(runs, hidden=everyone, **fields)
    assert frame.height == 0
    full = rg.aggregate(runs, **fields)
    assert frame.schema == full.schema
    no_points = rg.Runs(runs.runs, None)
    assert rg.aggregate(no_points, metrics=(), **fields).height == 0


def test_only_non_finite_values_gives_an_empty_frame():
    runs = make_runs([{"id": "a", "group": "g"}], [("a", "m", 0, math.nan)])
    frame = rg.aggregate(runs)
    assert frame.height == 0
    assert "dropped" in frame.columns


def test_recipe_is_the_view_and_lives_with_the_frame():
    runs = sample()
    view = rg.View(metrics=("loss",), band="ci")
    frame = rg.aggregate(runs, view, line="median")
    assert rg.recipe_of(frame) == view.replace(line="median")
    assert rg.recipe_of(frame.filter(pl.col("n") > 1)) is None
    assert rg.recipe_of(pl.DataFrame()) is None


@pytest.mark.parametrize("align", ["exact", "bucket", "interpolate", "auto"])
def test_string_histories_take_the_join_path_with_the_same_result(align):
    runs = sample()
    history = runs.history.collect().with_columns(
        pl.col("run_id").cast(pl.String), pl.col("metric").cast(pl.String)
    )
    plain = rg.Runs(runs.runs, history.lazy(), validate=False)
    assert plain.history.collect_schema()["run_id"] == pl.String
    expected = rg.aggregate(runs, align=align, points=2)
    assert rg.aggregate(plain, align=align, points=2).equals(expected)


def test_a_live_workspace_reuses_a_grouping_while_the_columns_it_uses_are_equal() -> None:
    from rungroup.engine.workspace import Workspace

    table = pl.DataFrame(
        {
            "id": ["a", "b", "c"],
            "name": ["A", "B", "C"],
            "state": ["running"] * 3,
            "config.lr": [0.1, 0.1, 0.2],
        }
    )
    points = [(i, "loss", 0, 1.0) for i in ("a", "b", "c")]
    view = rg.View(group_by=("config.lr",))
    workspace = Workspace(make_runs(table.to_dicts(), points))
    first = workspace.grouping(view)
    nothing = pl.DataFrame(
        schema={"run_id": pl.String, "metric": pl.String, "step": pl.Int64, "value": pl.Float64}
    )

    def polled(frame: pl.DataFrame) -> Workspace:
        return workspace.extended(make_runs(frame.to_dicts(), points), nothing)

    # a live poll: new Runs, states changed, the groups did not
    assert polled(table.with_columns(pl.lit("finished").alias("state"))).grouping(view) is first
    moved = polled(table.with_columns(pl.Series("config.lr", [0.1, 0.2, 0.2])))
    regrouped = moved.grouping(view)
    assert regrouped is not first
    assert regrouped.members["_s"].to_list() == [0, 1, 1]
    renamed = polled(table.with_columns(pl.Series("name", ["A", "B", "X"])))
    assert renamed.grouping(view).runs["name"].to_list() == ["A", "B", "X"]
    assert workspace.grouping(view.replace(hidden=frozenset({"a"}))).runs.height == 2
