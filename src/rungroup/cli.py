"""The `rungroup` command: demo runs, listings, exports, charts and reports from a terminal.

Every setting option is generated from a `View` field and named after it (`--group-by`,
`--smoothing-param`, ...), so the command, the widget and the Python API cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
import traceback
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rungroup import view as view_module
from rungroup._extras import MissingExtraError, require
from rungroup._version import __version__
from rungroup.view import View

if typing.TYPE_CHECKING:
    from rich.text import Text

#: Upper limits the command sets on top of `View`'s own checks: past them a run takes
#: minutes and gigabytes (bootstrap: resamples x points; points: the drawn frame's rows).
MAX_BOOTSTRAP_SAMPLES = 100_000
MAX_POINTS = 100_000
#: PNG pixel density: 10 already draws a 7,000-pixel-wide figure for one panel.
MAX_SCALE = 10.0

#: View fields whose value is one of a fixed set of words.
_CHOICES: dict[str, tuple[str, ...]] = {
    "line": view_module.LINES,
    "band": view_module.BANDS,
    "ci_method": view_module.CI_METHODS,
    "align": view_module.ALIGNS,
    "smoothing": view_module.SMOOTHINGS,
    "smooth_order": view_module.SMOOTH_ORDERS,
}

_HELP: dict[str, str] = {
    "metrics": "metric names (default: every metric)",
    "group_by": "run columns to group by, several for nested groups (default: group)",
    "grouping": "group runs (--no-grouping: one series per run)",
    "reverse": "group by every config key except those in --group-by",
    "x": "x axis: step, time, timestamp or a metric name",
    "quantiles": "lower and upper fraction of the quantile band",
    "ci_level": "confidence level of the ci band",
    "bootstrap_samples": "resamples of the bootstrap ci",
    "seed": "seed of the bootstrap ci",
    "points": "most x values per series",
    "min_runs": "drop points with fewer contributing runs",
    "smoothing_param": "ema weight, window points or gaussian sigma (x units)",
    "log_y": "logarithmic y axis",
    "hidden": "run ids to leave out",
}


class UsageError(Exception):
    """A wrong option or value: exit status 2, like argparse's own errors."""


def number_option(
    kind: type[int] | type[float], check: Callable[[float], bool], limit: str
) -> Callable[[str], Any]:
    """An argparse type: a finite number within `limit` (argparse exits with status 2 and
    ``argument --NAME: must be LIMIT, got VALUE`` otherwise)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'}"
            ) from None
        if not math.isfinite(value) or not check(value):
            raise argparse.ArgumentTypeError(f"must be {limit}, got {text}")
        return value

    return parse


#: The numeric View fields' ranges, checked as the options are parsed. `View` checks the
#: same lower bounds for the Python API; the command adds the upper ones.
_RANGES: dict[str, Callable[[str], Any]] = {
    "ci_level": number_option(float, lambda v: 0 < v < 1, "strictly between 0 and 1"),
    "bootstrap_samples": number_option(
        int, lambda v: 1 <= v <= MAX_BOOTSTRAP_SAMPLES, f"from 1 to {MAX_BOOTSTRAP_SAMPLES:,}"
    ),
    "seed": number_option(int, lambda v: 0 <= v < 2**63, "from 0 to 2**63 - 1"),
    "points": number_option(int, lambda v: 2 <= v <= MAX_POINTS, f"from 2 to {MAX_POINTS:,}"),
    "min_runs": number_option(int, lambda v: v >= 1, "at least 1"),
    "smoothing_param": number_option(float, lambda v: v >= 0, "at least 0"),
    "quantiles": number_option(float, lambda v: 0 <= v <= 1, "from 0 to 1"),
}

#: Characters that must not reach a terminal as they are: C0 and C1 controls but tab and
#: line feed (ESC starts escape sequences, CR overwrites the line) and the bidirectional
#: overrides that make text read in another order than it is stored.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character written out (ESC as ``\\x1b``), for a terminal."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def plain_text(value: Any) -> Text:
    """Run-provided text for a rich table: never read as markup, controls written out."""
    from rich.text import Text

    return Text(printable("" if value is None else str(value)))


def _add_view_options(
    parser: argparse.ArgumentParser, group_by_action: type[argparse.Action] | None = None
) -> None:
    group = parser.add_argument_group("view settings (the fields of rungroup.View)")
    hints = typing.get_type_hints(View)
    defaults = View()
    for field in dataclasses.fields(View):
        name, flag = field.name, "--" + field.name.replace("_", "-")
        default = getattr(defaults, name)
        kind = hints[name]
        help_text = _HELP.get(name, "")
        if name in _CHOICES:
            group.add_argument(
                flag,
                choices=_CHOICES[name],
                default=argparse.SUPPRESS,
                help=f"{help_text} (default: {default})".strip(),
            )
        elif kind is bool:
            group.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{help_text} (default: {default})",
            )
        elif name == "quantiles":
            group.add_argument(
                flag,
                nargs=2,
                type=_RANGES["quantiles"],
                metavar=("LOW", "HIGH"),
                default=argparse.SUPPRESS,
                help=f"{help_text} (default: {default[0]} {default[1]})",
            )
        elif typing.get_origin(kind) in (tuple, frozenset) or isinstance(kind, types.GenericAlias):
            extra = {"action": group_by_action} if name == "group_by" and group_by_action else {}
            group.add_argument(
                flag,
                nargs="+",
                **extra,  # type: ignore[arg-type]
                metavar=name.upper().rstrip("S") if name != "hidden" else "RUN_ID",
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            group.add_argument(
                flag,
                type=_RANGES.get(name, kind if kind in (int, float) else str),
                default=argparse.SUPPRESS,
                help=f"{help_text} (default: {default})".strip(),
            )


def _view(arguments: argparse.Namespace) -> View:
    given = vars(arguments)
    settings = {f.name: given[f.name] for f in dataclasses.fields(View) if f.name in given}
    try:
        return View(**settings)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from error


def _load(source: str) -> Any:
    import rungroup

    return rungroup.load(source)


def _engine_call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run an engine function; its ValueErrors are about the user's settings (status 2)."""
    try:
        return function(*args, **kwargs)
    except (ValueError, KeyError) as error:
        raise UsageError(str(error).strip("'\"")) from error


def _output(path: str, suffixes: tuple[str, ...]) -> Path:
    target = Path(path)
    if target.suffix.lower() not in suffixes:
        raise UsageError(f"-o {path}: the file name must end in one of {', '.join(suffixes)}")
    if not target.parent.exists():
        raise UsageError(f"-o {path}: folder {target.parent} does not exist")
    return target


# -- commands -------------------------------------------------------------------------------


def _demo(arguments: argparse.Namespace) -> int:
    from rungroup.demo import create_demo_runs

    create_demo_runs(arguments.dir)
    return 0


def _ls(arguments: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    import rungroup

    runs = _load(arguments.source)
    view = _view(arguments)
    console = Console()
    metrics = list(view.metrics) or runs.metrics[: arguments.max_metrics]
    if not arguments.group_by_given:
        table = Table(title=plain_text(f"{len(runs)} runs in {arguments.source}"))
        for column in ("name", "group", "job type", "state", *metrics):
            table.add_column(plain_text(column), justify="right" if column in metrics else "left")
        frame = runs.runs
        unknown = [m for m in metrics if m not in runs.metrics]
        if unknown:
            raise UsageError(
                f"unknown metric {unknown[0]!r}; choose from: {', '.join(runs.metrics)}"
            )
        for row in frame.iter_rows(named=True):
            values = [row.get(f"summary.{m}") for m in metrics]
            table.add_row(
                *(plain_text(row[key]) for key in ("name", "group", "job_type", "state")),
                *(plain_text(_number(v)) for v in values),
            )
        console.print(table)
        return 0
    summary = _engine_call(
        rungroup.summarize, runs, view.replace(metrics=tuple(metrics)), reduce=arguments.reduce
    )
    table = Table(
        title=plain_text(
            f"{summary.height} groups of {len(runs)} runs by {', '.join(view.group_by)}"
        )
    )
    table.add_column("group")
    table.add_column("runs", justify="right")
    table.add_column("states")
    for metric in metrics:
        table.add_column(plain_text(f"{metric} ({arguments.reduce})"), justify="right")
    for row in summary.iter_rows(named=True):
        cells: list[Text] = []
        for metric in metrics:
            mean, std = row.get(f"{metric}.mean"), row.get(f"{metric}.std")
            spread = f" ± {_number(std)}" if std is not None else ""
            cells.append(plain_text(_number(mean) + spread))
        table.add_row(
            plain_text(row["series"]), plain_text(row["runs"]), plain_text(row["states"]), *cells
        )
    console.print(table)
    return 0


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _aggregate(arguments: argparse.Namespace) -> tuple[Any, View]:
    import rungroup

    runs = _load(arguments.source)
    view = _view(arguments)
    return _engine_call(rungroup.aggregate, runs, view), view


def _export(arguments: argparse.Namespace) -> int:
    import rungroup

    target = _output(arguments.output, (".csv", ".parquet"))
    frame, view = _aggregate(arguments)
    rungroup.export(frame, target, view=view)
    print(f"wrote {frame.height} rows to {target}", file=sys.stderr)
    return 0


def save_chart(chart: Any, target: Path, scale: float = 2.0, title: str = "") -> None:
    """Write an Altair chart: PNG, SVG or PDF by vl-convert; HTML as the report's page.

    Altair's own HTML loads vega from a CDN and embeds the spec so that a run's name holding
    ``</script>`` ends the script; the report's page inlines vega and escapes the spec.
    """
    suffix = target.suffix.lower()
    if suffix in (".html", ".htm"):
        from rungroup.report import chart_page

        target.write_text(chart_page(chart.to_dict(), title=title), encoding="utf-8")
    else:
        require("vl_convert", "save", f"writing a {suffix} chart")
        if suffix == ".png":
            chart.save(str(target), scale_factor=scale)
        else:
            chart.save(str(target))


def _chart(arguments: argparse.Namespace) -> int:
    import rungroup

    target = _output(arguments.output, (".png", ".svg", ".pdf", ".html"))
    frame, _ = _aggregate(arguments)
    title = f"rungroup chart: {arguments.source}"
    save_chart(rungroup.chart(frame), target, scale=arguments.scale, title=title)
    print(f"wrote {target}", file=sys.stderr)
    return 0


def _report(arguments: argparse.Namespace) -> int:
    from rungroup.report import write_report

    target = _output(arguments.output, (".html", ".htm"))
    runs = _load(arguments.source)
    view = _view(arguments)
    _engine_call(
        write_report, runs, view, target, source=arguments.source, max_metrics=arguments.max_metrics
    )
    print(f"wrote {target}", file=sys.stderr)
    return 0


# -- parser ---------------------------------------------------------------------------------


class _GroupByGiven(argparse.Action):
    """Remember that --group-by was given: `ls` lists groups only when asked to."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        namespace.group_by = values
        namespace.group_by_given = True


def parser() -> argparse.ArgumentParser:
    from rungroup.report import MAX_METRICS as MAX_REPORT_METRICS

    main_parser = argparse.ArgumentParser(
        prog="rungroup",
        description="Group machine-learning runs into experiments.",
        epilog="A SOURCE is anything rungroup.load() reads: a rungroup store, an MLflow store "
        "or URI, a TensorBoard logdir or template, a W&B folder, a CSV template.",
    )
    main_parser.add_argument("--debug", action="store_true", help="print tracebacks on errors")
    main_parser.add_argument("--version", action="version", version=f"rungroup {__version__}")
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="train the demo runs (cross-validation and a distributed job)"
    )
    demo.add_argument("dir", nargs="?", default="demo-runs", help="store folder (demo-runs)")
    demo.set_defaults(handler=_demo)

    ls = commands.add_parser("ls", help="list runs, or groups with --group-by, as a table")
    ls.add_argument("source")
    ls.add_argument(
        "--reduce",
        choices=("last", "min", "max", "mean_last"),
        default="last",
        help="per-run value of each metric for group rows (default: last)",
    )
    ls.add_argument(
        "--max-metrics",
        type=number_option(int, lambda v: v >= 1, "at least 1"),
        default=4,
        help="metrics shown when --metrics is not given (default: 4)",
    )
    _add_view_options(ls, group_by_action=_GroupByGiven)
    ls.set_defaults(handler=_ls, group_by_given=False)

    export = commands.add_parser(
        "export", help="write the aggregate frame (with its recipe) as CSV or Parquet"
    )
    export.add_argument("source")
    export.add_argument("-o", "--output", required=True, help="out.csv or out.parquet")
    _add_view_options(export)
    export.set_defaults(handler=_export)

    chart = commands.add_parser("chart", help="draw the grouped chart as PNG, SVG, PDF or HTML")
    chart.add_argument("source")
    chart.add_argument(
        "-o", "--output", required=True, help="fig.png, fig.svg, fig.pdf or fig.html"
    )
    chart.add_argument(
        "--scale",
        type=number_option(
            float, lambda v: 0 < v <= MAX_SCALE, f"above 0 and at most {MAX_SCALE:g}"
        ),
        default=2.0,
        help=f"PNG scale factor, above 0 and at most {MAX_SCALE:g} (default: 2)",
    )
    _add_view_options(chart)
    chart.set_defaults(handler=_chart)

    report = commands.add_parser(
        "report", help="one self-contained HTML file: group table and a chart per metric"
    )
    report.add_argument("source")
    report.add_argument("-o", "--output", required=True, help="report.html")
    report.add_argument(
        "--max-metrics",
        type=number_option(int, lambda v: v >= 1, "at least 1"),
        default=MAX_REPORT_METRICS,
        help="refuse to draw more metrics than this; pick some with --metrics or raise it "
        f"(default: {MAX_REPORT_METRICS})",
    )
    _add_view_options(report)
    report.set_defaults(handler=_report)

    from rungroup.cache_command import add_parser as add_cache
    from rungroup.compare_command import add_parser as add_compare

    add_compare(commands)
    add_cache(commands)
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    command_parser = parser()
    arguments = command_parser.parse_args(argv)
    try:
        return int(arguments.handler(arguments))
    except UsageError as error:
        if arguments.debug:
            traceback.print_exc()
        command_parser.exit(2, printable(f"rungroup {arguments.command}: error: {error}") + "\n")
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if arguments.debug:
            traceback.print_exc()
        hint = "" if arguments.debug else " (run with --debug for the traceback)"
        kind = (
            ""
            if isinstance(error, (ValueError, OSError, MissingExtraError))
            else f"{type(error).__name__}: "
        )
        message = printable(f"rungroup {arguments.command}: error: {kind}{error}{hint}")
        print(message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
