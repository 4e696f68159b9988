"""The `rungroup` command on the demo runs: listings, exports, charts, reports and errors."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rungroup as rg
from rungroup import cli

pytestmark = pytest.mark.slow


def run_cli(*arguments: str, columns: int = 250) -> subprocess.CompletedProcess[str]:
    """The command in this process (a fresh interpreter per call would cost seconds each)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = cli.main(list(arguments))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return subprocess.CompletedProcess(arguments, code, stdout.getvalue(), stderr.getvalue())


def test_ls_lists_every_run_with_its_final_values(demo_runs: Path) -> None:
    result = run_cli("ls", str(demo_runs), "--metrics", "val_acc")
    assert result.returncode == 0, result.stderr
    runs = rg.load(demo_runs).runs
    for name in runs["name"]:
        assert name in result.stdout
    assert "35 runs" in result.stdout
    last = runs.filter(pl.col("name") == "eval")["summary.val_acc"].item()
    assert f"{last:.4g}" in result.stdout


def test_ls_with_group_by_lists_groups_with_counts_and_mean_std(demo_runs: Path) -> None:
    result = run_cli("ls", str(demo_runs), "--group-by", "config.lr", "--metrics", "val_acc")
    assert result.returncode == 0, result.stderr
    summary = rg.summarize(rg.load(demo_runs), group_by="config.lr", metrics="val_acc")
    assert f"{summary.height} groups of 35 runs by config.lr" in result.stdout
    for row in summary.iter_rows(named=True):
        assert f"{row['val_acc.mean']:.4g}" in result.stdout
        assert f"{row['runs']} finished" in result.stdout


SETTINGS = [
    "--metrics", "val_loss", "val_acc",
    "--group-by", "config.lr",
    "--line", "median",
    "--band", "quantile",
    "--quantiles", "0.1", "0.9",
    "--smoothing", "ema",
    "--smoothing-param", "0.3",
]  # fmt: skip


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_writes_what_aggregate_returns_with_a_recipe_that_reproduces_it(
    demo_runs: Path, tmp_path: Path, suffix: str
) -> None:
    target = tmp_path / f"out{suffix}"
    result = run_cli("export", str(demo_runs), *SETTINGS, "-o", str(target))
    assert result.returncode == 0, result.stderr
    runs = rg.load(demo_runs)
    expected = rg.aggregate(
        runs,
        metrics=["val_loss", "val_acc"],
        group_by="config.lr",
        line="median",
        band="quantile",
        quantiles=(0.1, 0.9),
        smoothing="ema",
        smoothing_param=0.3,
    )
    view = rg.load_recipe(target)
    assert view == rg.recipe_of(expected)
    again = rg.aggregate(runs, view)
    if suffix == ".parquet":
        written = pl.read_parquet(target)
        assert_frame_equal(written, expected, check_dtypes=False)
        assert_frame_equal(again, written, check_dtypes=False)
    else:
        written = pl.read_csv(target)
        assert written.height == expected.height
        for column in ("line", "lower", "upper", "x", "n"):
            assert written[column].to_list() == pytest.approx(
                expected[column].cast(pl.Float64).to_list(), rel=1e-12, nan_ok=True
            )


def test_export_through_the_cli_and_the_api_gives_the_same_bytes(
    demo_runs: Path, tmp_path: Path
) -> None:
    by_cli = tmp_path / "cli.csv"
    assert run_cli("export", str(demo_runs), *SETTINGS, "-o", str(by_cli)).returncode == 0
    view = rg.load_recipe(by_cli)
    by_api = tmp_path / "api.csv"
    rg.export(rg.aggregate(rg.load(demo_runs), view), by_api)
    assert by_cli.read_bytes() == by_api.read_bytes()
    sidecar = ".recipe.json"
    assert (tmp_path / f"cli.csv{sidecar}").read_bytes() == (
        tmp_path / f"api.csv{sidecar}"
    ).read_bytes()


def png_size(path: Path) -> tuple[int, int]:
    """Decode the whole image (not just its header) and return its size."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        assert image.getextrema() != ((255, 255), (255, 255), (255, 255), (255, 255))  # not blank
        return image.size


def test_chart_writes_a_png_of_the_expected_size_and_an_svg(
    demo_runs: Path, tmp_path: Path
) -> None:
    png = tmp_path / "fig.png"
    base = ["chart", str(demo_runs), "--metrics", "val_acc", "--group-by", "config.lr"]
    assert run_cli(*base, "--scale", "1", "-o", str(png)).returncode == 0
    one = png_size(png)
    assert run_cli(*base, "--scale", "2", "-o", str(png)).returncode == 0
    two = png_size(png)
    assert 300 < one[0] < 1200 and 200 < one[1] < 900
    assert abs(two[0] - 2 * one[0]) <= 2 and abs(two[1] - 2 * one[1]) <= 2
    svg = tmp_path / "fig.svg"
    assert run_cli(*base, "-o", str(svg)).returncode == 0
    text = svg.read_text()
    assert text.startswith("<svg") and "val_acc" in text


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--band", "wide"], "invalid choice: 'wide' (choose from 'none', 'minmax', 'std'"),
        (["--metrics", "nope"], "valid metrics: train_acc, train_loss, val_acc, val_loss"),
        (["--group-by", "config.nope"], "config.lr"),
        (["--x", "nope"], "step"),
        (["--quantiles", "0.9", "0.1"], "quantiles must be (lower, upper)"),
        (["--points", "0"], "argument --points: must be from 2 to 100,000, got 0"),
    ],
)
def test_a_wrong_setting_exits_2_naming_the_valid_choices(
    demo_runs: Path, tmp_path: Path, arguments: list[str], expected: str
) -> None:
    result = run_cli("export", str(demo_runs), *arguments, "-o", str(tmp_path / "x.csv"))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.csv").exists()


def test_errors_show_no_traceback_unless_debug(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    plain = run_cli("ls", missing)
    assert plain.returncode == 1
    assert "no such file or folder" in plain.stderr and "Traceback" not in plain.stderr
    debug = run_cli("--debug", "ls", missing)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    wrong_suffix = run_cli("export", missing, "-o", str(tmp_path / "x.xlsx"))
    assert wrong_suffix.returncode == 2 and ".csv, .parquet" in wrong_suffix.stderr


def test_help_lists_every_view_setting_with_its_choices() -> None:
    result = run_cli("export", "--help", columns=100)
    assert result.returncode == 0
    for field in rg.View.__dataclass_fields__:
        assert "--" + field.replace("_", "-") in result.stdout
    assert "{mean,median,min,max,iqm}" in result.stdout


def test_python_dash_m_and_the_console_script_are_the_same_command(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("rungroup")
    environment = {**os.environ, "COLUMNS": "80"}
    for command in ([str(script)], [sys.executable, "-m", "rungroup"]):
        result = subprocess.run(
            [*command, "ls", str(tmp_path), "--band", "nope"],
            capture_output=True,
            text=True,
            env=environment,
        )
        assert result.returncode == 2
        assert result.stderr.startswith("usage: rungroup ls")


def test_export_through_the_cli_and_the_widget_gives_the_same_bytes(
    demo_runs: Path, tmp_path: Path
) -> None:
    by_cli = tmp_path / "cli.parquet"
    result = run_cli("export", str(demo_runs), *SETTINGS, "--points", "400", "-o", str(by_cli))
    assert result.returncode == 0, result.stderr
    widget = rg.Explorer(demo_runs, **rg.load_recipe(by_cli).to_dict())
    by_widget = widget.export(tmp_path / "widget.parquet")
    assert by_cli.read_bytes() == by_widget.read_bytes()
