"""`rungroup compare SOURCE --metric M --group-by K [--baseline B] [--pair-by ...]`.

Prints `rungroup.compare()`'s frame as a table in the terminal (rich) or as Markdown
(``--format markdown``, for a paper's appendix or a pull request), writes the whole frame with
its recipe with ``-o out.csv|out.parquet``, and the performance profile chart with
``--profile fig.png|svg|pdf|html``. Text that comes from the runs (group labels, metric names)
is printed as plain text, never as rich markup.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import polars as pl

from rungroup.cli import number_option
from rungroup.engine.scores import REDUCTIONS

FORMATS = ("table", "markdown")
#: The most bootstrap resamples the command accepts (memory grows with resamples x runs).
MAX_BOOTSTRAP_SAMPLES = 1_000_000


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the `compare` command on the main parser's subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "compare",
        help="compare groups: estimates, intervals and tests against a baseline group",
        description="One row per group: the runs' scores (one number per run from its curve), "
        "their mean, median and IQM with intervals, and tests against --baseline. "
        "docs/statistics.md, 'Comparing groups', has every formula.",
    )
    parser.add_argument("source")
    parser.add_argument("--metric", required=True, help="the metric to compare")
    parser.add_argument(
        "--group-by", nargs="+", default=["group"], metavar="COLUMN", help="(default: group)"
    )
    parser.add_argument(
        "--reduce",
        choices=REDUCTIONS,
        default="last",
        help="each run's score from its curve (default: last)",
    )
    parser.add_argument(
        "--k",
        type=number_option(int, lambda v: v >= 1, "at least 1"),
        default=10,
        help="points averaged by --reduce mean_last (default: 10)",
    )
    parser.add_argument(
        "--at",
        type=number_option(float, lambda v: True, "a finite number"),
        help="score each curve up to this x (default: all of it)",
    )
    parser.add_argument("--x", default="step", help="x axis: step, time or a metric (step)")
    parser.add_argument("--baseline", help="the group the others are compared with (its label)")
    parser.add_argument(
        "--pair-by", nargs="+", metavar="COLUMN", help="run columns that pair runs, e.g. seed"
    )
    parser.add_argument(
        "--test-train-ratio",
        type=number_option(float, lambda v: v > 0, "a positive number"),
        help="test/train size ratio for the Nadeau-Bengio test (1/(K-1) for K folds)",
    )
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument(
        "--higher-is-better", dest="higher_is_better", action="store_true", default=None
    )
    direction.add_argument(
        "--lower-is-better",
        dest="higher_is_better",
        action="store_false",
        help="(default: guessed from the metric's name: loss, error, ... are lower)",
    )
    parser.add_argument(
        "--ci-level",
        type=number_option(float, lambda v: 0 < v < 1, "strictly between 0 and 1"),
        default=0.95,
        help="confidence level of every interval (default: 0.95)",
    )
    parser.add_argument(
        "--bootstrap-samples",
        type=number_option(
            int, lambda v: 1 <= v <= MAX_BOOTSTRAP_SAMPLES, f"from 1 to {MAX_BOOTSTRAP_SAMPLES:,}"
        ),
        default=2000,
        help="bootstrap resamples (default: 2000)",
    )
    parser.add_argument(
        "--seed",
        type=number_option(int, lambda v: v >= 0, "at least 0"),
        default=0,
        help="seed of the bootstrap (default: 0)",
    )
    parser.add_argument("--hidden", nargs="+", default=[], metavar="RUN_ID", help="runs left out")
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="terminal output (default: table)"
    )
    parser.add_argument("-o", "--output", help="also write the frame: out.csv or out.parquet")
    parser.add_argument(
        "--profile", help="also draw the performance profile: fig.png, .svg, .pdf or .html"
    )
    parser.set_defaults(handler=run)
    return parser


def run(arguments: argparse.Namespace) -> int:
    import rungroup
    from rungroup.cli import _engine_call, _load, _output, printable, save_chart

    target = _output(arguments.output, (".csv", ".parquet")) if arguments.output else None
    figure = (
        _output(arguments.profile, (".png", ".svg", ".pdf", ".html")) if arguments.profile else None
    )
    runs = _load(arguments.source)
    settings: dict[str, Any] = {
        "metric": arguments.metric,
        "reduce": arguments.reduce,
        "k": arguments.k,
        "at": arguments.at,
        "higher_is_better": arguments.higher_is_better,
        "group_by": tuple(arguments.group_by),
        "x": arguments.x,
        "ci_level": arguments.ci_level,
        "bootstrap_samples": arguments.bootstrap_samples,
        "seed": arguments.seed,
        "hidden": frozenset(arguments.hidden),
    }
    frame = _engine_call(
        rungroup.compare,
        runs,
        baseline=arguments.baseline,
        pair_by=arguments.pair_by,
        test_train_ratio=arguments.test_train_ratio,
        **settings,
    )
    about = _recipe(frame)
    if arguments.format == "markdown":
        sys.stdout.write(printable(markdown(frame, about)))
    else:
        _print_table(frame, about)
    if target is not None:
        rungroup.export(frame, target)
        print(f"wrote {frame.height} rows to {target}", file=sys.stderr)
    if figure is not None:
        profile = _engine_call(rungroup.performance_profile, runs, **settings)
        save_chart(rungroup.profile_chart(profile), figure, title="rungroup compare profile")
        print(f"wrote {figure}", file=sys.stderr)
    return 0


def _recipe(frame: pl.DataFrame) -> dict[str, Any]:
    from rungroup.engine.recipe import recipe_extra

    extra = recipe_extra(frame) or {}
    about: dict[str, Any] = extra["rungroup_compare"]
    return about


# -- cells ----------------------------------------------------------------------------------


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _interval(row: dict[str, Any], estimate: str, low: str, high: str, separator: str) -> str:
    text = _number(row[estimate])
    if row.get(low) is None or row.get(high) is None:
        return text
    return f"{text}{separator}[{_number(row[low])}, {_number(row[high])}]"


def _p(value: Any) -> str:
    if value is None:
        return ""
    return "< 1e-4" if value < 1e-4 else f"{value:.2g}"


def cells(
    frame: pl.DataFrame, about: dict[str, Any], separator: str = " "
) -> tuple[list[str], list[list[str]]]:
    """The table's header and rows as text (shared by the rich table and the Markdown);
    `separator` goes between an estimate and its interval."""
    level = f"{about['ci_level']:.0%}"
    header = ["group", "n", f"mean [{level} t]", "median", "IQM"]
    compared = about["baseline"] is not None
    paired = compared and bool(about["pair_by"])
    corrected = compared and about["test_train_ratio"] is not None
    if compared:
        header += ["diff [Welch]", "p (Holm)", "P(improve)", "Hedges' g"]
    if paired:
        header += ["paired diff", "pairs", "paired p (Holm)"]
    if corrected:
        header += ["corrected p (Holm)"]
    rows = []
    for row in frame.iter_rows(named=True):
        cells_ = [
            str(row["series"]) + (" (baseline)" if row["is_baseline"] else ""),
            str(row["n"]),
            _interval(row, "mean", "mean_low", "mean_high", separator),
            _interval(row, "median", "median_low", "median_high", separator),
            _interval(row, "iqm", "iqm_low", "iqm_high", separator),
        ]
        if compared:
            cells_ += [
                _interval(row, "diff", "diff_low", "diff_high", separator),
                _p(row["p_holm"]),
                _interval(
                    row,
                    "prob_improvement",
                    "prob_improvement_low",
                    "prob_improvement_high",
                    separator,
                ),
                _number(row["hedges_g"]),
            ]
        if paired:
            cells_ += [
                _interval(row, "paired_diff", "paired_low", "paired_high", separator),
                _number(row["pairs"]),
                _p(row["paired_p_holm"]),
            ]
        if corrected:
            cells_ += [_p(row["nb_p_holm"])]
        rows.append(cells_)
    return header, rows


def describe(about: dict[str, Any], groups: int) -> str:
    """One paragraph: what was scored, the direction, the intervals and the correction."""
    better = "higher" if about["higher_is_better"] else "lower"
    guessed = " (guessed from its name)" if about["direction_guessed"] else ""
    reduce = about["reduce"] + (f" {about['k']}" if about["reduce"] == "mean_last" else "")
    at = f" up to x = {about['at']:g}" if about["at"] is not None else ""
    text = (
        f"Score per run: {reduce} of {about['metric']}{at}; {better} is better{guessed}. "
        f"{groups} groups; intervals at {about['ci_level']:.0%}: the mean's by Student t, "
        f"the median's and the IQM's by percentile bootstrap ({about['bootstrap_samples']} "
        f"resamples per group, seed {about['seed']})."
    )
    if about["baseline"] is not None:
        text += (
            f" Baseline: {about['baseline']}; diff = mean - baseline mean with Welch's interval; "
            f"p-values two-sided, corrected across groups by {about['correction'].title()}'s "
            "method; P(improve) = P(run better than a baseline run) + P(tie)/2."
        )
    if about["pair_by"]:
        text += f" Pairs matched on {', '.join(about['pair_by'])}."
    if about["test_train_ratio"] is not None:
        text += (
            " Corrected p: Nadeau and Bengio's resampled t test with test/train ratio "
            f"{about['test_train_ratio']:g}."
        )
    return text


# -- output ---------------------------------------------------------------------------------


#: Characters that Markdown could read as formatting in text that comes from the runs.
_MARKDOWN_SPECIAL = "\\`*_[]<>|#"


def _markdown_text(text: str) -> str:
    """Text from the runs as literal Markdown: formatting characters escaped, line breaks
    flattened, so a group's name can neither format nor break the table."""
    flat = text.replace("\r", " ").replace("\n", " ")
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in flat)


def markdown(frame: pl.DataFrame, about: dict[str, Any]) -> str:
    """A pipe table (the group column escaped; numbers as they are) and a paragraph below."""
    header, rows = cells(frame, about)
    right = [False, *([True] * (len(header) - 1))]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if r else "---" for r in right) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join([_markdown_text(row[0]), *row[1:]]) + " |")
    return "\n".join(lines) + "\n\n" + _markdown_text(describe(about, frame.height)) + "\n"


def _print_table(frame: pl.DataFrame, about: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from rungroup.cli import plain_text

    header, rows = cells(frame, about, separator="\n")
    table = Table(
        title=plain_text(f"{about['metric']} by group"),
        caption=plain_text(describe(about, frame.height)),
        caption_justify="left",
    )
    for i, name in enumerate(header):
        table.add_column(plain_text(name), justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(plain_text(cell) for cell in row))
    Console().print(table)
