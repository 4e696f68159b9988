"""The Explorer's Compare view: what one `compare` request costs the kernel.

    .venv/bin/python benchmarks/bench_compare_view.py
    .venv/bin/python benchmarks/bench_compare_view.py --quick    # 1,000 runs, a smoke run

The runs of bench_compare.py (10,000 runs x 100 steps of one metric in 50 groups), shown in an
Explorer grouped by group. Timed, median of 5 after a warm-up, with the session's cache of
comparisons emptied before each call: the `compare` request (`rungroup.compare` with 2,000
bootstrap resamples, the table's rows as Arrow, the forest plot's spec built with Altair) for
each reduction; then the same request answered from the cache; then with grouping off (one
group per run: the forest plot keeps its height, the table has a row per run).
"""

from __future__ import annotations

import argparse
from typing import Any

from bench_compare import median_seconds, runs_object
from rungroup.widget import Explorer


def request(widget: Explorer, *, cached: bool = False) -> Any:
    if not cached:
        widget._session.compares.clear()
    reply, _ = widget.handle({"kind": "compare", "id": 1})
    assert reply["ok"], reply.get("error")
    return reply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    runs = runs_object(1000 if parser.parse_args().quick else 10_000)
    widget = Explorer(runs, group_by=["group"], panel="compare")
    widget.handle({"kind": "data", "id": 0})  # the charts' frame, as the browser asks first
    print(f"{len(runs):,} runs in 50 groups, 2000 resamples")
    for reduce in ("last", "best", "mean_last", "auc"):
        widget.compare = {"reduce": reduce}
        seconds = median_seconds(lambda: request(widget))
        print(f"compare request, reduce={reduce}: {seconds * 1000:.0f} ms")
    seconds = median_seconds(lambda: request(widget, cached=True))
    print(f"again (the session's cache): {seconds * 1000:.2f} ms")
    widget.grouping = False
    widget.handle({"kind": "data", "id": 0})
    seconds = median_seconds(lambda: request(widget), repeats=3)
    print(f"grouping off ({len(runs):,} groups): {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
