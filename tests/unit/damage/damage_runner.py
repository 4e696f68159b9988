"""Load a damaged source in a child process with a time and memory limit.

A damage case must not hang or exhaust memory, and must not take the test session with it
when it does: the load runs in a fresh interpreter, under an address-space limit, and a case
that outlives its time limit fails the test by name instead of blocking the suite.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MEMORY_LIMIT = 3 * 1024**3
TIME_LIMIT = 60.0

_CHILD = r"""
import json, sys, warnings
import polars as pl
import rungroup as rg

source, options, follow = json.loads(sys.argv[1])
result = {"warnings": [], "error": None, "runs": {}, "columns": []}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        if follow:
            from rungroup.sources.followers import follow as follower
            runs = follower(source, **options).poll()[0]
        else:
            runs = rg.load(source, **options)
        history = runs.history.collect()
        counts = history.group_by("run_id").len()
        points = {str(r): int(n) for r, n in counts.iter_rows()}
        for run_id in runs.runs["id"].to_list():
            result["runs"][run_id] = points.get(run_id, 0)
        result["columns"] = runs.runs.columns
    except Exception as error:  # reported to the parent, which decides
        result["error"] = {"type": type(error).__name__, "message": str(error)}
for w in caught:
    result["warnings"].append({"category": w.category.__name__, "message": str(w.message)})
print(json.dumps(result))
"""


@dataclass(frozen=True)
class Outcome:
    """What a load in the child process gave."""

    runs: dict[str, int]
    """Run id -> number of history points loaded for it."""
    warnings: list[dict[str, str]] = field(default_factory=list)
    error: dict[str, str] | None = None
    columns: list[str] = field(default_factory=list)

    def load_warnings(self) -> list[str]:
        return [w["message"] for w in self.warnings if w["category"] == "LoadWarning"]

    def warned_about(self, *fragments: str) -> bool:
        """True when one LoadWarning's text holds every fragment."""
        return any(all(f in m for f in fragments) for m in self.load_warnings())


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


#: Run as root without the capabilities that bypass file permissions, so that a folder with
#: mode 000 is unreadable to the child as it is to any other user.
_UNPRIVILEGED = [
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
]


def load_isolated(
    source: Path | str,
    *,
    timeout: float = TIME_LIMIT,
    unprivileged: bool = False,
    follow: bool = False,
    **options: Any,
) -> Outcome:
    """`rg.load(source, **options)` in a child process; a hang or a crash fails the test.

    `unprivileged`: file permissions apply to the child even when the tests run as root
    (skips the test where that cannot be arranged). `follow`: the first poll of
    `follow(source, **options)` (the live readers) instead of a load."""
    argument = json.dumps([os.fsdecode(source), options, follow])
    prefix: list[str] = []
    if unprivileged and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        prefix = _UNPRIVILEGED
    try:
        done = subprocess.run(
            [*prefix, sys.executable, "-c", _CHILD, argument],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_limit_memory,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {source} did not finish within {timeout:.0f} s (a hang)")
    if done.returncode != 0:
        pytest.fail(
            f"loading {source} crashed the interpreter (exit {done.returncode}):\n"
            f"{done.stderr[-3000:]}"
        )
    last_line = done.stdout.strip().splitlines()[-1]
    result = json.loads(last_line)
    return Outcome(
        runs=result["runs"],
        warnings=result["warnings"],
        error=result["error"],
        columns=result["columns"],
    )
