"""How long `import rungroup` takes, by what a program uses of it.

Each case runs in 7 fresh interpreters with ``python -X importtime``; the figure is the median
of the summed top-level import times (what the interpreter spent importing, without its own
start-up), with the number of modules imported and which heavy ones were among them.

    python benchmarks/bench_import.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys

RUNS = 7
HEAVY = ("altair", "anywidget", "ipywidgets", "IPython", "vl_convert", "polars", "numpy")
CASES = {
    "logging path: import rungroup; rungroup.init": "import rungroup; rungroup.init",
    "loading: rungroup.load": "import rungroup; rungroup.load",
    "the widget: rungroup.Explorer": "import rungroup; rungroup.Explorer",
}


def measure(code: str) -> tuple[float, int, list[str]]:
    probe = f"{code}\nimport sys\nprint(','.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    )
    total_us = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # top level: what the program itself imported
            total_us += int(cumulative)
    modules = done.stdout.strip().split(",")
    heavy = [name for name in HEAVY if name in modules]
    return total_us / 1000, len(modules), heavy


def main() -> None:
    print(f"python {sys.version.split()[0]}, median of {RUNS} fresh processes")
    for label, code in CASES.items():
        results = [measure(code) for _ in range(RUNS)]
        median = statistics.median(r[0] for r in results)
        _, modules, heavy = results[-1]
        print(f"{label:48} {median:7.0f} ms  {modules:5} modules  heavy: {', '.join(heavy)}")


if __name__ == "__main__":
    main()
