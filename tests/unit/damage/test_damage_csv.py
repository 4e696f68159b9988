"""CSV and JSON-lines trees, damaged: every case loads in a child process with a time limit.

The clean tree is written with pandas (`DataFrame.to_csv`, as training scripts write their
logs) and PyYAML: three runs `a`, `b`, `c` with `loss` and `acc` at 10 steps (20 points each)
and an `hparams.yaml` each. A case damages run `b` (or adds a file beside it) and states
exactly which runs load with how many points and what the LoadWarning names.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from damage_runner import load_isolated

CLEAN = {"a": 20, "b": 20, "c": 20}


@pytest.fixture(scope="module")
def clean_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pandas as pd
    import yaml

    root = tmp_path_factory.mktemp("csv-clean") / "runs"
    for number, run in enumerate(("a", "b", "c")):
        folder = root / run
        folder.mkdir(parents=True)
        frame = pd.DataFrame(
            {
                "step": range(10),
                "loss": [1.0 / (s + 1 + number) for s in range(10)],
                "acc": [s / 10 for s in range(10)],
            }
        )
        frame.to_csv(folder / "metrics.csv", index=False)
        (folder / "hparams.yaml").write_text(yaml.safe_dump({"lr": 0.1 * (number + 1)}))
    return root


def _b(root: Path) -> Path:
    return root / "b" / "metrics.csv"


def _lines(root: Path) -> list[str]:
    return _b(root).read_text().splitlines()


def _write_lines(root: Path, lines: list[str], end: str = "\n") -> None:
    _b(root).write_text(end.join(lines) + end)


def _set_cell(root: Path, line: int, column: int, value: str) -> None:
    """Line numbers as in the warnings: the header is line 1."""
    lines = _lines(root)
    cells = lines[line - 1].split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells)
    _write_lines(root, lines)


def _add_column(root: Path, name: str, values: Callable[[int], str]) -> None:
    lines = _lines(root)
    out = [f"{lines[0]},{name}"] + [f"{line},{values(i)}" for i, line in enumerate(lines[1:])]
    _write_lines(root, out)


def _jsonl(root: Path, lines: list[str]) -> None:
    _b(root).unlink()
    (root / "b" / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def _good_jsonl(n: int = 10) -> list[str]:
    return [json.dumps({"step": s, "loss": 1.0 / (s + 1), "acc": s / 10}) for s in range(n)]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@dataclass(frozen=True)
class Case:
    name: str
    damage: Callable[[Path], None]
    runs: dict[str, int]
    #: fragments one LoadWarning must hold together (file, line, what); None: no warning
    warns: tuple[str, ...] | None


def _alias_bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


CASES = [
    Case(
        "empty file",
        lambda r: _b(r).write_bytes(b""),
        {**CLEAN, "b": 0},
        ("b/metrics.csv", "empty file"),
    ),
    Case(
        "blank file",
        lambda r: _b(r).write_text("  \n\n \n"),
        {**CLEAN, "b": 0},
        ("b/metrics.csv", "empty file"),
    ),
    Case("header only", lambda r: _write_lines(r, _lines(r)[:1]), {**CLEAN, "b": 0}, None),
    Case(
        "timestamp in milliseconds",
        lambda r: _add_column(r, "timestamp", lambda i: str(1_700_000_000_000 + i * 1000)),
        CLEAN,
        ("b/metrics.csv", "line 2", "timestamp", "milliseconds", "10 value(s)"),
    ),
    Case(
        "timestamp inf",
        lambda r: _add_column(
            r, "timestamp", lambda i: "inf" if i == 4 else str(1_700_000_000 + i)
        ),
        CLEAN,
        ("b/metrics.csv", "line 6", "timestamp inf", "1 value(s)"),
    ),
    Case(
        "timestamp NaN",
        lambda r: _add_column(
            r, "timestamp", lambda i: "nan" if i == 2 else str(1_700_000_000 + i)
        ),
        CLEAN,
        ("b/metrics.csv", "line 4", "timestamp nan"),
    ),
    Case(
        "timestamp far negative",
        lambda r: _add_column(r, "timestamp", lambda i: "-1e20"),
        CLEAN,
        ("b/metrics.csv", "line 2", "not seconds since 1970"),
    ),
    Case(
        "time column inf",
        lambda r: _add_column(r, "time", lambda i: "inf" if i == 9 else str(i)),
        CLEAN,
        ("b/metrics.csv", "line 11", "time inf", "not a number of seconds"),
    ),
    Case(
        "step NaN",
        lambda r: _set_cell(r, 5, 0, "nan"),
        {**CLEAN, "b": 18},
        ("b/metrics.csv", "line 5", "step nan", "1 row(s) skipped"),
    ),
    Case(
        "step inf",
        lambda r: _set_cell(r, 3, 0, "inf"),
        {**CLEAN, "b": 18},
        ("b/metrics.csv", "line 3", "step inf"),
    ),
    Case(
        "step -inf",
        lambda r: _set_cell(r, 11, 0, "-inf"),
        {**CLEAN, "b": 18},
        ("b/metrics.csv", "line 11", "step -inf"),
    ),
    Case(
        "step huge",
        lambda r: _set_cell(r, 2, 0, "1e300"),
        {**CLEAN, "b": 18},
        ("b/metrics.csv", "line 2", "step 1e+300"),
    ),
    Case(
        "csv beside tsv",
        lambda r: (r / "b" / "metrics.tsv").write_text("step\tloss\n0\t1\n1\t2\n"),
        {"a": 20, "c": 20, "b/metrics.csv": 20, "b/metrics.tsv": 2},
        ("b/metrics.tsv", "another data file is run 'b/metrics'"),
    ),
    Case(
        "file beside a folder of the same name",
        lambda r: shutil.copy(r / "a" / "metrics.csv", r / "b.csv"),
        {"a": 20, "c": 20, "b.csv": 20, "b/metrics.csv": 20},
        ("b.csv", "another data file is run 'b'"),
    ),
    Case(
        "truncated in a cell",
        lambda r: _b(r).write_text(_b(r).read_text()[: _b(r).read_text().index("\n7,") + 4]),
        {**CLEAN, "b": 15},
        None,
    ),
    Case(
        "truncated after the header",
        lambda r: _b(r).write_text(_lines(r)[0][:6]),
        {**CLEAN, "b": 0},
        None,
    ),
    Case(
        "garbage bytes",
        lambda r: _b(r).write_bytes(bytes(range(256)) * 8),
        {"a": 20, "c": 20},
        ("b/metrics.csv", "not read", "malformed"),
    ),
    Case(
        "text in a numeric column",
        lambda r: _set_cell(r, 6, 1, "oops"),
        {**CLEAN, "b": 19},
        ("b/metrics.csv", "line 6", "'oops'", "column 'loss'", "1 cell(s)"),
    ),
    Case("text column", lambda r: _add_column(r, "note", lambda i: f"epoch {i} ok"), CLEAN, None),
    Case(
        "byte-order mark",
        lambda r: _b(r).write_bytes(b"\xef\xbb\xbf" + _b(r).read_bytes()),
        CLEAN,
        None,
    ),
    Case("CRLF line ends", lambda r: _write_lines(r, _lines(r), "\r\n"), CLEAN, None),
    Case(
        "duplicate header",
        lambda r: _write_lines(r, [_lines(r)[0].replace("acc", "loss"), *_lines(r)[1:]]),
        CLEAN,
        ("b/metrics.csv", "column 'loss' appears twice"),
    ),
    Case("empty column", lambda r: _add_column(r, "lr", lambda i: ""), CLEAN, None),
    Case("ragged row", lambda r: _set_cell(r, 4, 2, "0.2,9,9"), {**CLEAN, "b": 20}, None),
    Case(
        "latin-1 bytes in a cell", lambda r: _add_column(r, "who", lambda i: "caf\xe9"), CLEAN, None
    ),
    Case(
        "blank lines between rows",
        lambda r: _write_lines(r, [x for line in _lines(r) for x in (line, "")]),
        CLEAN,
        None,
    ),
    Case(
        "hparams.yaml alias bomb",
        lambda r: (r / "b" / "hparams.yaml").write_text(_alias_bomb()),
        CLEAN,
        ("b/hparams.yaml", "alias bomb"),
    ),
    Case(
        "hparams.yaml refers to itself",
        lambda r: (r / "b" / "hparams.yaml").write_text("a: &a [*a]\n"),
        CLEAN,
        ("b/hparams.yaml", "cycle"),
    ),
    Case(
        "hparams.yaml nested deeply",
        lambda r: (r / "b" / "hparams.yaml").write_text("a: " + _nested(5000) + "\n"),
        CLEAN,
        ("b/hparams.yaml", "nested"),
    ),
    Case(
        "hparams.yaml not YAML",
        lambda r: (r / "b" / "hparams.yaml").write_text("a: [1, 2\n\tb: }\n"),
        CLEAN,
        ("b/hparams.yaml", "not YAML"),
    ),
    Case(
        "hparams.yaml a list",
        lambda r: (r / "b" / "hparams.yaml").write_text("- 1\n- 2\n"),
        CLEAN,
        ("b/hparams.yaml", "not a mapping"),
    ),
    Case(
        "hparams.yaml not UTF-8",
        lambda r: (r / "b" / "hparams.yaml").write_bytes(b"lr: caf\xe9\n"),
        CLEAN,
        ("b/hparams.yaml", "UnicodeDecodeError"),
    ),
    Case(
        "config.json lone surrogate",
        lambda r: (r / "b" / "config.json").write_text('{"opt\\ud800": "x\\udc00"}'),
        CLEAN,
        ("b/config.json", "lone surrogate"),
    ),
    Case(
        "config.json nested deeply",
        lambda r: (r / "b" / "config.json").write_text('{"a": ' + _nested(100_000) + "}"),
        CLEAN,
        ("b/config.json", "nested"),
    ),
    Case(
        "config.json too large",
        lambda r: (r / "b" / "config.json").write_text('{"a": "' + "x" * (17 * 1024 * 1024) + '"}'),
        CLEAN,
        ("b/config.json", "more than the"),
    ),
    Case(
        "mixed config types",
        lambda r: (r / "b" / "hparams.yaml").write_text("lr: fast\n"),
        CLEAN,
        ("config.lr", "different types"),
    ),
    Case(
        "jsonl bad line",
        lambda r: _jsonl(r, [*_good_jsonl()[:3], "{not json", *_good_jsonl()[3:]]),
        CLEAN,
        ("b/metrics.jsonl", "line 4", "not JSON"),
    ),
    Case(
        "jsonl a list line",
        lambda r: _jsonl(r, [*_good_jsonl(), "[1, 2]"]),
        CLEAN,
        ("b/metrics.jsonl", "line 11", "not a JSON object"),
    ),
    Case(
        "jsonl nested deeply",
        lambda r: _jsonl(r, [*_good_jsonl(), '{"a": ' + _nested(100_000) + "}"]),
        CLEAN,
        ("b/metrics.jsonl", "line 11", "nested"),
    ),
    Case(
        "jsonl lone surrogate key",
        lambda r: _jsonl(r, [*_good_jsonl(9), '{"step": 9, "loss\\ud800": 1.0, "acc": 0.9}']),
        {**CLEAN, "b": 20},
        ("b/metrics.jsonl", "line 10", "lone surrogate"),
    ),
    Case(
        "jsonl huge integer",
        lambda r: _jsonl(
            r, [*_good_jsonl(9), '{"step": 9, "loss": 1' + "0" * 400 + ', "acc": 0.9}']
        ),
        CLEAN,
        None,
    ),
    Case(
        "jsonl step NaN",
        lambda r: _jsonl(r, [*_good_jsonl(9), '{"step": NaN, "loss": 1.0, "acc": 0.9}']),
        {**CLEAN, "b": 18},
        ("b/metrics.jsonl", "line 10", "step nan"),
    ),
    Case(
        "jsonl truncated last line",
        lambda r: _jsonl(r, [*_good_jsonl(9), '{"step": 9, "lo']),
        {**CLEAN, "b": 18},
        ("b/metrics.jsonl", "line 10", "not JSON"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_damaged_csv_tree(case: Case, clean_tree: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    shutil.copytree(clean_tree, root)
    case.damage(root)
    outcome = load_isolated(root)
    assert outcome.error is None, outcome.error
    assert outcome.runs == case.runs, outcome.load_warnings()
    if case.warns is None:
        assert outcome.load_warnings() == []
    else:
        assert outcome.warned_about(*case.warns), outcome.load_warnings()


def test_clean_tree_loads_without_warnings(clean_tree: Path) -> None:
    outcome = load_isolated(clean_tree)
    assert outcome.error is None
    assert outcome.runs == CLEAN
    assert outcome.load_warnings() == []
