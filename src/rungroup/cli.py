"""The `rungroup` command: demo runs, listings, exports, charts and reports from a terminal.

Every setting option is generated from a `View` field and named after it (`--group-by`,
`--smoothing-param`, ...), so the command, the widget and the Python API cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import traceback
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rungroup import view as view_module
from rungroup.view import View

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
                type=float,
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
                type=kind if kind in (int, float) else str,
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
        table = Table(title=f"{len(runs)} runs in {arguments.source}")
        for column in ("name", "group", "job type", "state", *metrics):
            table.add_column(column, justify="right" if column in metrics else "left")
        frame = runs.runs
        unknown = [m for m in metrics if m not in runs.metrics]
        if unknown:
            raise UsageError(
                f"unknown metric {unknown[0]!r}; choose from: {', '.join(runs.metrics)}"
            )
        for row in frame.iter_rows(named=True):
            values = [row.get(f"summary.{m}") for m in metrics]
            table.add_row(
                str(row["name"]),
                _text(row["group"]),
                _text(row["job_type"]),
                str(row["state"]),
                *(_number(v) for v in values),
            )
        console.print(table)
        return 0
    summary = _engine_call(
        rungroup.summarize, runs, view.replace(metrics=tuple(metrics)), reduce=arguments.reduce
    )
    table = Table(
        title=f"{summary.height} groups of {len(runs)} runs by {', '.join(view.group_by)}"
    )
    table.add_column("group")
    table.add_column("runs", justify="right")
    table.add_column("states")
    for metric in metrics:
        table.add_column(f"{metric} ({arguments.reduce})", justify="right")
    for row in summary.iter_rows(named=True):
        cells = []
        for metric in metrics:
            mean, std = row.get(f"{metric}.mean"), row.get(f"{metric}.std")
            cells.append(_number(mean) + (f" ± {_number(std)}" if std is not None else ""))
        table.add_row(str(row["series"]), str(row["runs"]), str(row["states"]), *cells)
    console.print(table)
    return 0


def _text(value: Any) -> str:
    return "" if value is None else str(value)


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


def _chart(arguments: argparse.Namespace) -> int:
    import rungroup

    target = _output(arguments.output, (".png", ".svg", ".pdf", ".html"))
    frame, _ = _aggregate(arguments)
    chart = rungroup.chart(frame)
    if target.suffix.lower() == ".png":
        chart.save(str(target), scale_factor=arguments.scale)
    else:
        chart.save(str(target))
    print(f"wrote {target}", file=sys.stderr)
    return 0


def _report(arguments: argparse.Namespace) -> int:
    from rungroup.report import write_report

    target = _output(arguments.output, (".html", ".htm"))
    runs = _load(arguments.source)
    view = _view(arguments)
    _engine_call(write_report, runs, view, target, source=arguments.source)
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
    main_parser = argparse.ArgumentParser(
        prog="rungroup",
        description="Group machine-learning runs into experiments.",
        epilog="A SOURCE is anything rungroup.load() reads: a rungroup store, an MLflow store "
        "or URI, a TensorBoard logdir or template, a W&B folder, a CSV template.",
    )
    main_parser.add_argument("--debug", action="store_true", help="print tracebacks on errors")
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
        "--max-metrics", type=int, default=4, help="metrics shown when --metrics is not given"
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
    chart.add_argument("-o", "--output", required=True, help="fig.png, fig.svg or fig.pdf")
    chart.add_argument("--scale", type=float, default=2.0, help="PNG scale factor (default: 2)")
    _add_view_options(chart)
    chart.set_defaults(handler=_chart)

    report = commands.add_parser(
        "report", help="one self-contained HTML file: group table and a chart per metric"
    )
    report.add_argument("source")
    report.add_argument("-o", "--output", required=True, help="report.html")
    _add_view_options(report)
    report.set_defaults(handler=_report)

    from rungroup.compare_command import add_parser as add_compare

    add_compare(commands)
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    command_parser = parser()
    arguments = command_parser.parse_args(argv)
    try:
        return int(arguments.handler(arguments))
    except UsageError as error:
        if arguments.debug:
            traceback.print_exc()
        command_parser.exit(2, f"rungroup {arguments.command}: error: {error}\n")
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if arguments.debug:
            traceback.print_exc()
        hint = "" if arguments.debug else " (run with --debug for the traceback)"
        kind = "" if isinstance(error, (ValueError, OSError)) else f"{type(error).__name__}: "
        print(f"rungroup {arguments.command}: error: {kind}{error}{hint}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
