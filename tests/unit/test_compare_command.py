"""`rungroup compare`: the terminal table, the Markdown, -o exports, the profile and errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_cli import run_cli

import rungroup as rg
from rungroup.compare_command import _number, _p

pytestmark = pytest.mark.slow

CV = ("--metric", "val_acc", "--group-by", "config.lr", "--baseline", "0.01")
PAIRS = ("--pair-by", "config.seed", "config.fold", "--test-train-ratio", "0.25")


def _expected(demo_runs: Path) -> pl.DataFrame:
    return rg.compare(
        rg.load(demo_runs),
        metric="val_acc",
        group_by="config.lr",
        baseline="0.01",
        pair_by=("config.seed", "config.fold"),
        test_train_ratio=0.25,
    )


def test_markdown_table_holds_the_frame_numbers(demo_runs: Path) -> None:
    result = run_cli("compare", str(demo_runs), *CV, *PAIRS, "--format", "markdown")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == [
        "group",
        "n",
        "mean [95% t]",
        "median",
        "IQM",
        "diff [Welch]",
        "p (Holm)",
        "P(improve)",
        "Hedges' g",
        "paired diff",
        "pairs",
        "paired p (Holm)",
        "corrected p (Holm)",
    ]
    assert lines[1] == "|---|" + "---:|" * 12
    frame = _expected(demo_runs)
    table = lines[2 : 2 + frame.height]
    assert len(table) == frame.height and lines[2 + frame.height] == ""
    for line, row in zip(table, frame.iter_rows(named=True), strict=True):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[0] == str(row["series"]) + (" (baseline)" if row["is_baseline"] else "")
        assert cells[1] == str(row["n"])
        mean = f"{_number(row['mean'])} [{_number(row['mean_low'])}, {_number(row['mean_high'])}]"
        assert cells[2] == (mean if row["mean_low"] is not None else _number(row["mean"]))
        assert cells[6] == _p(row["p_holm"])
        assert cells[8] == _number(row["hedges_g"])
        assert cells[12] == _p(row["nb_p_holm"])
    note = lines[-1]
    assert "last of val\\_acc; higher is better (guessed from its name)" in note
    assert "Holm's method" in note and "seed 0" in note and "test/train ratio 0.25" in note


def test_terminal_table_and_output_files(demo_runs: Path, tmp_path: Path) -> None:
    target = tmp_path / "compare.parquet"
    result = run_cli("compare", str(demo_runs), *CV, *PAIRS, "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert "val_acc by group" in result.stdout and "0.01 (baseline)" in result.stdout
    assert "Pairs matched on config.seed, config.fold." in result.stdout
    assert_frame_equal(pl.read_parquet(target), _expected(demo_runs))
    recipe = json.loads(pl.read_parquet_metadata(target)["rungroup"])
    assert recipe["rungroup_compare"]["correction"] == "holm"
    assert recipe["rungroup_compare"]["pair_by"] == ["config.seed", "config.fold"]
    csv = tmp_path / "compare.csv"
    figure = tmp_path / "profile.svg"
    result = run_cli("compare", str(demo_runs), *CV, "-o", str(csv), "--profile", str(figure))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "compare.csv.recipe.json").exists()
    assert "fraction of runs with last val_acc" in figure.read_text()


@pytest.mark.parametrize(
    ("option", "value", "limit"),
    [
        ("--ci-level", "1.5", "must be strictly between 0 and 1, got 1.5"),
        ("--bootstrap-samples", "0", "must be from 1 to 1,000,000, got 0"),
        ("--k", "0", "must be at least 1, got 0"),
        ("--seed", "-1", "must be at least 0, got -1"),
        ("--test-train-ratio", "-0.2", "must be a positive number, got -0.2"),
        ("--at", "nan", "must be a finite number, got nan"),
        ("--k", "two", "'two' is not an integer"),
    ],
)
def test_numeric_options_are_checked(demo_runs: Path, option: str, value: str, limit: str) -> None:
    result = run_cli("compare", str(demo_runs), *CV, option, value)
    assert result.returncode == 2
    assert f"argument {option}: {limit}" in result.stderr


def test_bad_names_exit_2_with_the_choices(demo_runs: Path) -> None:
    result = run_cli("compare", str(demo_runs), "--metric", "val_acc", "--group-by", "config.lr",
                     "--baseline", "0.5")  # fmt: skip
    assert result.returncode == 2
    assert "baseline='0.5' is not a group (groups: '0.001', '0.01', '0.05', '0.1')" in result.stderr
    result = run_cli("compare", str(demo_runs), "--metric", "nope")
    assert result.returncode == 2 and "unknown metric(s) 'nope'" in result.stderr


def test_run_text_is_printed_as_text(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for group, scores in (("[bold]a|b*c[/bold]", (0.1, 0.2)), ("plain_name", (0.3, 0.5))):
        for score in scores:
            with rg.init(project="p", group=group, dir=store) as run:
                run.log({"acc": score}, step=0)
    result = run_cli("compare", str(store), "--metric", "acc", "--baseline", "plain_name")
    assert result.returncode == 0, result.stderr
    assert "[bold]a|b*c[/bold]" in result.stdout  # markup shown, not applied
    result = run_cli(
        "compare", str(store), "--metric", "acc", "--baseline", "plain_name", "--format",
        "markdown",
    )  # fmt: skip
    assert "| \\[bold\\]a\\|b\\*c\\[/bold\\] | 2 |" in result.stdout
    assert "Baseline: plain\\_name;" in result.stdout
