"""Run-provided text stays text (terminal, chart HTML, CSV) and every number option is bounded.

docs/security.md lists what is escaped where; these tests check each entry without a browser
(tests/e2e/test_security_e2e.py opens the HTML pages in chromium).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path

import polars as pl
import pytest

import rungroup as rg
from rungroup import cli
from rungroup.export import guard_text

HOSTILE = [
    "[/bold]",
    "[link=https://example.invalid/]click[/link]",
    "\x1b[31mred\x1b]8;;https://example.invalid/\x1b\\link\x1b]8;;\x1b\\\x07",
    '</script><img src=x onerror="window.__pwned=1">',
    '=HYPERLINK("https://example.invalid")',
    "\u202eevil",
]


def main(*arguments: str) -> tuple[int, str, str]:
    """`rungroup ARGUMENTS` in this process, 400 columns wide: (status, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("COLUMNS", "400")
        try:
            code = cli.main(list(arguments))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("hostile") / "store"
    for index, name in enumerate(HOSTILE):
        with rg.init(dir=store, project="p", group=name, name=name, config={"note": name}) as run:
            for step in range(4):
                run.log({"loss": 1.0 / (step + 1 + index)})
    return store


# -- the terminal ----------------------------------------------------------------------------


@pytest.mark.parametrize("group_by", [[], ["--group-by", "group"]])
def test_ls_prints_names_as_text_and_no_control_character(
    hostile_store: Path, group_by: list[str]
) -> None:
    code, out, err = main("ls", str(hostile_store), *group_by)
    assert code == 0, err
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", out)
    assert "[/bold]" in out and "[link=https://example.invalid/]" in out
    assert "\\x1b[31mred" in out and "\\u202eevil" in out
    assert "</script><img" in out


def test_plain_text_writes_controls_out_and_keeps_the_rest() -> None:
    assert cli.plain_text("a\x1b[2Jb\x07\r").plain == "a\\x1b[2Jb\\x07\\r"
    assert cli.plain_text("[bold]x[/bold]").plain == "[bold]x[/bold]"
    assert cli.plain_text("tab\tline\nnext é ± 中").plain == "tab\tline\nnext é ± 中"
    assert cli.plain_text(None).plain == ""


def test_error_messages_carry_no_control_character(tmp_path: Path) -> None:
    code, _, err = main("ls", str(tmp_path / "missing\x1b]0;title\x07"))
    assert code == 1
    assert "\x1b" not in err and "\x07" not in err and "\\x1b]0;title\\x07" in err


# -- number options --------------------------------------------------------------------------

BOUNDS = [
    ("chart", ["-o", "f.png"], "--scale", "500", "above 0 and at most 10"),
    ("chart", ["-o", "f.png"], "--scale", "0", "above 0 and at most 10"),
    ("chart", ["-o", "f.png"], "--scale", "-1", "above 0 and at most 10"),
    ("chart", ["-o", "f.png"], "--scale", "inf", "above 0 and at most 10"),
    ("ls", [], "--max-metrics", "-1", "at least 1"),
    ("report", ["-o", "r.html"], "--max-metrics", "0", "at least 1"),
    ("export", ["-o", "x.csv"], "--bootstrap-samples", "1000000000", "from 1 to 100,000"),
    ("export", ["-o", "x.csv"], "--bootstrap-samples", "0", "from 1 to 100,000"),
    ("chart", ["-o", "f.png"], "--points", "100000000", "from 2 to 100,000"),
    ("report", ["-o", "r.html"], "--seed", "-1", "from 0 to 2**63 - 1"),
    ("ls", [], "--ci-level", "1", "strictly between 0 and 1"),
    ("export", ["-o", "x.csv"], "--min-runs", "0", "at least 1"),
    ("export", ["-o", "x.csv"], "--smoothing-param", "nan", "at least 0"),
    ("export", ["-o", "x.csv"], "--quantiles", "1.5", "from 0 to 1"),
]


@pytest.mark.parametrize(("command", "extra", "option", "value", "limit"), BOUNDS)
def test_a_number_out_of_range_exits_2_naming_the_limit(
    tmp_path: Path, command: str, extra: list[str], option: str, value: str, limit: str
) -> None:
    values = ["0.1", value] if option == "--quantiles" else [value]
    output = [e if e.startswith("-") else str(tmp_path / e) for e in extra]
    code, _, err = main(command, str(tmp_path), *output, option, *values)
    assert code == 2
    assert f"argument {option}: must be {limit}, got {value}" in err
    assert list(tmp_path.iterdir()) == []  # checked before anything is read or written


def _numeric_options() -> list[tuple[str, argparse.Action]]:
    commands = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for name, subparser in commands.choices.items():
        for action in subparser._actions:
            if action.type is not None and action.type is not str:
                found.append((name, action))
    return found


def test_every_number_option_of_every_command_is_range_checked() -> None:
    options = _numeric_options()
    names = {(command, action.dest) for command, action in options}
    assert {("chart", "scale"), ("ls", "max_metrics"), ("report", "bootstrap_samples")} <= names
    for command, action in options:
        # a bare int or float would accept -1, nan and 1e9 alike
        assert action.type not in (int, float), f"{command} {action.option_strings}"
        with pytest.raises(argparse.ArgumentTypeError, match=r"must be|is not an integer"):
            action.type("nan")  # type: ignore[misc]


def test_the_report_refuses_more_metrics_than_its_cap(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with rg.init(dir=store, project="p") as run:
        run.log({"a": 1.0, "b": 2.0, "c": 3.0})
    target = tmp_path / "r.html"
    code, _, err = main("report", str(store), "-o", str(target), "--max-metrics", "2")
    assert code == 2
    assert "would draw 3 metrics, more than the limit of 2" in err and "--max-metrics" in err
    assert not target.exists()
    assert main("report", str(store), "-o", str(target), "--max-metrics", "3")[0] == 0
    assert target.exists()


# -- chart HTML ------------------------------------------------------------------------------


def test_chart_html_is_the_self_contained_escaped_page(hostile_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "fig.html"
    code, _, err = main("chart", str(hostile_store), "-o", str(target))
    assert code == 0, err
    page = target.read_text(encoding="utf-8")
    # one element per script: no name closed one early, none loads anything from elsewhere
    assert page.count("<script") == page.count("</script>") == 2
    assert "<script src" not in page and "cdn.jsdelivr" not in page
    assert HOSTILE[3] not in page
    assert '<\\/script><img src=x onerror=\\"window.__pwned=1\\">' in page


# -- CSV -------------------------------------------------------------------------------------


def test_guard_text_prefixes_what_a_spreadsheet_would_run() -> None:
    for formula in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert guard_text(formula) == "'" + formula
    for text in ("lr=0.1", "a-b", "", "'=quoted"):
        assert guard_text(text) == text


def test_csv_export_guards_text_cells_and_names_but_not_numbers(
    hostile_store: Path, tmp_path: Path
) -> None:
    runs = rg.load(hostile_store)
    summary = rg.summarize(runs, group_by="config.note")
    view = rg.View(group_by=("config.note",))
    guarded = pl.read_csv(rg.export(summary, tmp_path / "g.csv", view=view), infer_schema=False)
    raw = pl.read_csv(
        rg.export(summary, tmp_path / "raw.csv", view=view, csv_guard=False), infer_schema=False
    )
    formula = '=HYPERLINK("https://example.invalid")'
    assert formula in raw["series"].to_list() and formula not in guarded["series"].to_list()
    assert "'" + formula in guarded["series"].to_list()
    # every number is written as it is
    numbers = [name for name, dtype in summary.schema.items() if dtype.is_numeric()]
    assert numbers and guarded.select(numbers).equals(raw.select(numbers))
    assert [s for s in guarded["series"] if not s.startswith("'")] == [
        s for s in raw["series"] if not s.startswith(("=", "+", "-", "@"))
    ]


def test_csv_guard_leaves_negative_numbers_and_guards_column_names(tmp_path: Path) -> None:
    frame = pl.DataFrame({"=cmd": [-0.5, 1.0], "label": ["-0.5", "ok"], "n": [-1, 2]})
    view = rg.View()
    text = rg.export(frame, tmp_path / "x.csv", view=view).read_text().splitlines()
    assert text == ["'=cmd,label,n", "-0.5,'-0.5,-1", "1.0,ok,2"]
    plain = rg.export(frame, tmp_path / "y.csv", view=view, csv_guard=False).read_text()
    assert plain.splitlines()[0] == "=cmd,label,n"


def test_the_cli_export_is_guarded(hostile_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "curves.csv"
    code, _, err = main(
        "export", str(hostile_store), "--group-by", "config.note", "-o", str(target)
    )
    assert code == 0, err
    series = pl.read_csv(target, infer_schema=False)["series"].unique().to_list()
    assert '\'=HYPERLINK("https://example.invalid")' in series
    assert not any(s.startswith(("=", "+", "-", "@")) for s in series)


def test_the_widget_exports_are_guarded(hostile_store: Path, tmp_path: Path) -> None:
    explorer = rg.Explorer(hostile_store, group_by=["config.note"])
    formula = '=HYPERLINK("https://example.invalid")'
    written = explorer.export(tmp_path / "groups.csv", what="summary")
    assert "'" + formula in pl.read_csv(written, infer_schema=False)["series"].to_list()
    # the export button's message: the same bytes, through the same export()
    reply, buffers = explorer.handle({"kind": "export", "id": 1, "what": "groups_csv"})
    assert str(reply.get("filename")).endswith("_by-note_groups.csv"), reply
    text = bytes(buffers[0]).decode()
    assert "'" + formula.replace('"', '""') in text
    assert "\n" + formula not in text and "," + formula not in text
