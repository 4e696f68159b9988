"""summarize(): one row per group with counts, states, shared config and metric statistics."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from engine_helpers import make_runs
from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine_grouping import sample

import rungroup as rg


def test_one_row_per_group_with_counts_states_and_config():
    table = rg.summarize(sample(), metrics="loss")
    assert table.columns[:7] == [
        "group",
        "series",
        "runs",
        "states",
        "config.lr",
        "config.lr.values",
        "config.seed",
    ]
    rows = {row["series"]: row for row in table.iter_rows(named=True)}
    assert list(rows) == ["g1", "g2", "(missing)"]
    assert rows["g1"]["runs"] == 2
    assert rows["g1"]["states"] == "2 finished"
    assert rows["g1"]["config.lr"] == 0.1 and rows["g1"]["config.lr.values"] == 1  # shared
    assert rows["g1"]["config.seed"] is None and rows["g1"]["config.seed.values"] == 2  # differs
    assert rows["(missing)"]["states"] == "1 running"


def test_metric_statistics_over_the_last_values():
    table = rg.summarize(sample(), metrics="loss")
    g1 = table.row(0, named=True)
    last = np.array([1.0 * 3, 2.0 * 3])  # a and b at their last step
    assert g1["loss.mean"] == last.mean()
    assert g1["loss.std"] == pytest.approx(last.std(ddof=1), rel=1e-12)
    assert g1["loss.stderr"] == pytest.approx(last.std(ddof=1) / math.sqrt(2), rel=1e-12)
    assert (g1["loss.min"], g1["loss.max"], g1["loss.n"]) == (3.0, 6.0, 2)
    g2 = table.row(1, named=True)
    assert g2["loss.std"] is None and g2["loss.n"] == 1


@pytest.mark.parametrize(
    ("reduce", "k", "expected"),
    [("last", 10, 2.0), ("min", 10, -5.0), ("max", 10, 9.0), ("mean_last", 2, (4.0 + 2.0) / 2)],
)
def test_reductions_use_finite_values_in_step_order(reduce, k, expected):
    points = [("a", "m", 3, 4.0), ("a", "m", 0, 9.0), ("a", "m", 1, -5.0), ("a", "m", 5, 2.0)]
    points += [("a", "m", 6, math.nan)]
    table = rg.summarize(make_runs([{"id": "a", "group": "g"}], points), reduce=reduce, k=k)
    assert table["m.mean"].to_list() == [expected]


def test_tags_grouping_off_hidden_and_bad_arguments():
    runs = sample()
    by_tag = rg.summarize(runs, group_by="tags", metrics="loss")
    assert dict(zip(by_tag["series"], by_tag["runs"], strict=True)) == {
        "t1": 2,
        "t2": 2,
        "(missing)": 1,
    }
    per_run = rg.summarize(runs, grouping=False, hidden={"a"})
    assert per_run["run_id"].to_list() == ["d", "b", "c"]
    assert (per_run["runs"] == 1).all()
    with pytest.raises(ValueError, match="choose one of: last, min, max, mean_last"):
        rg.summarize(runs, reduce="median")
    with pytest.raises(ValueError, match="valid metrics: acc, loss"):
        rg.summarize(runs, metrics="nope")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=6),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from(["last", "min", "max", "mean_last"]),
)
def test_summary_matches_numpy(curves, reduce):
    runs = [{"id": f"r{i}", "group": "g"} for i in range(len(curves))]
    points = [(f"r{i}", "m", s, v) for i, c in enumerate(curves) for s, v in enumerate(c)]
    row = rg.summarize(make_runs(runs, points), reduce=reduce, k=3).row(0, named=True)
    per_run = {
        "last": [c[-1] for c in curves],
        "min": [min(c) for c in curves],
        "max": [max(c) for c in curves],
        "mean_last": [float(np.mean(c[-3:])) for c in curves],
    }[reduce]
    v = np.array(per_run)
    assert row["m.n"] == len(curves)
    assert row["m.mean"] == pytest.approx(v.mean(), rel=1e-12, abs=1e-12)
    assert (row["m.min"], row["m.max"]) == pytest.approx((v.min(), v.max()), rel=1e-12, abs=1e-12)
    if len(curves) > 1:
        assert row["m.std"] == pytest.approx(v.std(ddof=1), rel=1e-12, abs=1e-12)
    assert row["runs"] == len(curves)
    assert isinstance(row["states"], str)
    assert pl.DataFrame([row]).height == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["g1", "g2", "g3"]),
            st.sampled_from(["finished", "failed", "running"]),
            st.sampled_from([0.1, 0.2]),
            st.floats(-100, 100, allow_nan=False),
        ),
        min_size=1,
        max_size=8,
    ),
    st.randoms(use_true_random=False),
)
def test_each_group_summarizes_its_own_runs_whatever_their_order(specs, random):
    # Runs come in any order (a store lists them by creation time, ids are random): every
    # group must get its own runs' states, config and values.
    runs = [
        {"id": f"r{i:02d}", "group": g, "state": s, "config.lr": lr}
        for i, (g, s, lr, _) in enumerate(specs)
    ]
    points = [(f"r{i:02d}", "m", 0, last) for i, (*_, last) in enumerate(specs)]
    random.shuffle(runs)
    random.shuffle(points)
    table = rg.summarize(make_runs(runs, points), group_by="group")
    for row in table.iter_rows(named=True):
        mine = [spec for spec in specs if spec[0] == row["group"]]
        lrs = {lr for _, _, lr, _ in mine}
        assert row["runs"] == len(mine)
        assert sorted(row["states"].split(", ")) == sorted(
            f"{sum(s == state for _, s, _, _ in mine)} {state}"
            for state in {s for _, s, _, _ in mine}
        )
        assert row["config.lr.values"] == len(lrs)
        assert row["config.lr"] == (lrs.pop() if len(lrs) == 1 else None)
        values = np.array([last for *_, last in mine])
        assert row["m.n"] == len(mine)
        assert (row["m.min"], row["m.max"]) == (values.min(), values.max())
        assert row["m.mean"] == pytest.approx(values.mean(), rel=1e-12, abs=1e-12)


def test_a_store_listing_runs_out_of_id_order_keeps_each_run_in_its_group(tmp_path):
    # The store lists runs by creation time: here the later id comes first.
    for run_id, group, lr, loss, fails in [
        ("zzzz", "A", 0.1, 100.0, True),
        ("aaaa", "B", 0.2, 1.0, False),
    ]:
        run = rg.init(project="p", group=group, config={"lr": lr}, dir=tmp_path, id=run_id)
        run.log({"loss": loss})
        run.finish(exit_code=1 if fails else 0)
    runs = rg.load(tmp_path)
    assert runs.runs["id"].to_list() == ["zzzz", "aaaa"]
    rows = {row["group"]: row for row in rg.summarize(runs, metrics="loss").iter_rows(named=True)}
    assert (rows["A"]["states"], rows["A"]["config.lr"], rows["A"]["loss.mean"]) == (
        "1 failed",
        0.1,
        100.0,
    )
    assert (rows["B"]["states"], rows["B"]["config.lr"], rows["B"]["loss.mean"]) == (
        "1 finished",
        0.2,
        1.0,
    )
