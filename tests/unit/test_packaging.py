"""Package metadata and optional extras: one version, LICENSE/CHANGELOG, `--version`, `[save]`."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import polars as pl
import pytest
import tomllib

import rungroup as rg
from rungroup import cli
from rungroup._extras import MissingExtraError
from rungroup.report import write_report

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_written_once_and_installed_metadata_agrees() -> None:
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "src/rungroup/_version.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+", rg.__version__)
    assert metadata.version("rungroup") == rg.__version__
    # No other file writes the version literal.
    init = (ROOT / "src/rungroup/__init__.py").read_text(encoding="utf-8")
    assert f'"{rg.__version__}"' not in init


def test_version_option_prints_the_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rungroup", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == f"rungroup {rg.__version__}"


def test_license_changelog_urls_and_classifiers() -> None:
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "Keep a Changelog" in changelog
    assert "## [Unreleased]" in changelog
    project = PYPROJECT["project"]
    assert {"Homepage", "Changelog", "Issues"} <= set(project["urls"])
    assert "Framework :: Jupyter :: JupyterLab :: Extensions" in project["classifiers"]
    assert project["authors"]


def test_extras_match_use() -> None:
    project = PYPROJECT["project"]
    core = " ".join(project["dependencies"])
    assert "vl-convert" not in core
    extras = project["optional-dependencies"]
    assert any(d.startswith("vl-convert-python") for d in extras["save"])
    assert all(extras.values()), "no empty extras"
    assert extras["all"] == ["rungroup[save,mlflow,postgres]"]


def test_readme_installs_from_the_index_before_developer_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.index("pip install rungroup") < readme.index("make demo")
    assert "rungroup[save]" in readme
    # The package index shows no relative image.
    assert not re.search(r"!\[[^\]]*\]\((?!https://)", readme)


@pytest.fixture
def without_vl_convert(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vl_convert", None)


def _frame() -> pl.DataFrame:
    return pl.DataFrame({"step": [0, 1], "value": [1.0, 0.5], "metric": ["loss", "loss"]})


@pytest.mark.usefixtures("without_vl_convert")
@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_chart_images_without_vl_convert_name_the_extra(tmp_path: Path, suffix: str) -> None:
    import altair as alt

    chart = alt.Chart(_frame()).mark_line().encode(x="step", y="value")
    with pytest.raises(MissingExtraError, match=r"pip install 'rungroup\[save\]'"):
        cli.save_chart(chart, tmp_path / f"c{suffix}")
    assert not (tmp_path / f"c{suffix}").exists()


@pytest.mark.usefixtures("without_vl_convert")
def test_the_report_without_vl_convert_names_the_extra(tmp_path: Path) -> None:
    with rg.init(project="p", dir=tmp_path / "store") as run:
        run.log({"loss": 1.0})
    target = tmp_path / "report.html"
    with pytest.raises(MissingExtraError, match=r"pip install 'rungroup\[save\]'"):
        write_report(rg.load(tmp_path / "store"), rg.View(), target)
    assert not target.exists()


def test_cli_reports_the_missing_extra_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise MissingExtraError("writing a .png chart needs ... pip install 'rungroup[save]'")

    monkeypatch.setattr(cli, "save_chart", refuse)
    with rg.init(project="p", dir=tmp_path / "store") as run:
        run.log({"loss": 1.0})
    code = cli.main(["chart", str(tmp_path / "store"), "-o", str(tmp_path / "c.png")])
    err = capsys.readouterr().err
    assert code == 1
    assert "rungroup[save]" in err
    assert "MissingExtraError" not in err
