"""The `rungroup` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(arguments: argparse.Namespace) -> int:
    from rungroup.demo import create_demo_runs

    create_demo_runs(arguments.dir)
    return 0


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="rungroup", description="Group machine-learning runs into experiments."
    )
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="train the demo runs (cross-validation and a distributed job)"
    )
    demo.add_argument("dir", nargs="?", default="demo-runs", help="store folder (demo-runs)")
    demo.set_defaults(handler=_demo)
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        return int(arguments.handler(arguments))
    except (ValueError, OSError, TypeError) as error:
        print(f"rungroup: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
