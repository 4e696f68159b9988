"""Live mode: what one refresh of a live `Explorer` costs while runs are being written.

    .venv/bin/python benchmarks/bench_live.py                       # 100 runs x 10 steps/s, 60 s
    .venv/bin/python benchmarks/bench_live.py --duration 10         # a smoke run

A few writer processes (`--writers`) log `--runs` runs with `rungroup.init()` into a fresh
store, each run one step of 4 metrics every 1/`--rate` seconds (the logger's own thread
flushes once a second). This process follows the store as a live Explorer does, one tick
every `--interval` seconds, and times each tick:

- poll: the follower's `poll()` (reads only the bytes appended since the last poll);
- kernel: everything the kernel does for a tick: `Explorer.refresh()` (poll, replace the runs)
  plus the `data` and `table` replies the browser asks for on the new revision
  (re-aggregate, Arrow; the table's first page);
- cpu: the process's CPU time over the same span, all its threads (the engine reduces blocks
  in a small thread pool, so it can exceed kernel; it is less when the tick waits on the disk);
- bytes: what those replies send (JSON + buffers);
- refresh (poll + replacing the runs), aggregate (the engine) and table, inside kernel;
  not_engine: kernel minus aggregate (what the follower and the widget cost); the poll's own
  phases (list the folders, read what changed, append the points, the runs table); load: the
  machine's 1-minute load average (the writers share its cores).

`--profile` prints where the ticks' time goes (cProfile, which slows the Python parts).

Ticks are driven directly (no event loop), so the timings are the kernel's work alone.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

WRITER = textwrap.dedent(
    """
    import sys, time
    import rungroup as rg

    store, first, count, rate, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \\
        float(sys.argv[4]), float(sys.argv[5])
    runs = [
        rg.init(dir=store, project="live", group="bench", name=f"run-{i}",
                config={"lr": [0.1, 0.03, 0.01, 0.003, 0.001][i % 5], "seed": i // 5})
        for i in range(first, first + count)
    ]
    began = time.monotonic()
    step = 0
    while time.monotonic() - began < duration:
        for i, run in enumerate(runs):
            x = step + 1
            run.log({"loss": 1 / x + i * 1e-3, "acc": 1 - 1 / x, "lr": 0.1 / x,
                     "grad_norm": 0.5 + (i % 7) * 0.1}, step=step)
        step += 1
        time.sleep(max(0.0, began + step / rate - time.monotonic()))
    for run in runs:
        run.finish()
    """
)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {
        "p50": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "max": ordered[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="steps per second per run")
    parser.add_argument("--writers", type=int, default=4, help="writer processes")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of writing")
    parser.add_argument("--interval", type=float, default=2.0, help="refresh interval (s)")
    parser.add_argument("--profile", action="store_true", help="cProfile the ticks")
    args = parser.parse_args()
    profile = cProfile.Profile() if args.profile else None

    from rungroup.widget import Explorer

    with tempfile.TemporaryDirectory(prefix="rungroup-bench-live-") as folder:
        store = Path(folder) / "store"
        store.mkdir()
        script = Path(folder) / "writer.py"
        script.write_text(WRITER)
        per = -(-args.runs // args.writers)
        writers = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(script),
                    str(store),
                    str(first),
                    str(min(per, args.runs - first)),
                    str(args.rate),
                    str(args.duration),
                ]
            )
            for first in range(0, args.runs, per)
        ]
        # every run has flushed its first steps (the logger flushes once a second)
        while sum(1 for h in store.glob("*/*/history.rgh") if h.stat().st_size > 8) < args.runs:
            time.sleep(0.05)
        widget = Explorer(store, refresh_interval=args.interval, group_by=["config.lr"])
        widget.live = True  # the timer is never run here: ticks are driven below
        widget._live.cancel()
        spec_key: str | None = None
        request = 0

        def ask_for_data() -> tuple[dict[str, float], int]:
            """What the browser asks for when it draws: the chart, then the table's first
            page. The timings of the replies and the bytes they send."""
            nonlocal spec_key, request
            request += 1
            timings: dict[str, float] = {}
            sent = 0
            for kind in ("data", "table"):
                reply, buffers = widget.handle(
                    {"kind": kind, "id": request, "spec_key": spec_key, "limit": 200}
                )
                assert reply["ok"], reply
                spec_key = reply.get("spec_key", spec_key)
                timings.update(reply["timings"])
                sent += len(json.dumps(reply)) + sum(len(b) for b in buffers)
            return timings, sent

        ask_for_data()  # the widget is displayed (its first chart) before the ticks start
        ticks: list[dict[str, Any]] = []
        began = time.monotonic()
        while any(w.poll() is None for w in writers) or not ticks or ticks[-1]["changed"]:
            time.sleep(max(0.0, began + (len(ticks) + 1) * args.interval - time.monotonic()))
            if profile is not None:
                profile.enable()
            cpu = time.process_time()
            started = time.perf_counter()
            changed = widget.refresh()
            refreshed = time.perf_counter()
            sent = 0
            timings: dict[str, float] = {}
            if changed:
                timings, sent = ask_for_data()
            done = time.perf_counter()
            cpu = time.process_time() - cpu
            if profile is not None:
                profile.disable()
            points = widget.runs.history.select("value").collect().height
            phases = getattr(widget._live.follower, "timings", {})
            ticks.append(
                {
                    **{f"poll_{name}": value for name, value in phases.items()},
                    "t": round(time.monotonic() - began, 1),
                    "changed": changed,
                    "runs": len(widget.runs),
                    "points": points,
                    "read_kb": widget._live.follower.bytes_read / 1e3,  # type: ignore[union-attr]
                    "poll_ms": widget.last_poll["poll_ms"],
                    "refresh_ms": 1000 * (refreshed - started),
                    "kernel_ms": 1000 * (done - started),
                    "cpu_ms": 1000 * cpu,
                    "sent_kb": sent / 1e3,
                    "aggregate_ms": timings.get("aggregate_ms", 0.0),
                    "table_ms": timings.get("table_ms", 0.0),
                    "not_engine_ms": 1000 * (done - started) - timings.get("aggregate_ms", 0.0),
                    "load": os.getloadavg()[0],
                }
            )
            tick = ticks[-1]
            print(
                f"t={tick['t']:6.1f}s runs={tick['runs']:4d} points={points:9,d} "
                f"read={tick['read_kb']:7.1f} KB poll={tick['poll_ms']:6.1f} ms "
                f"kernel={tick['kernel_ms']:6.1f} ms sent={tick['sent_kb']:6.1f} KB",
                flush=True,
            )
        widget.close()

    # the steady state: every run is being written, the last (finishing) ticks left out
    steady = [t for t in ticks if t["changed"] and t["runs"] == args.runs][:-2]
    print()
    print(
        f"{args.runs} runs x {args.rate:g} steps/s x 4 metrics, {args.writers} writer "
        f"processes, {args.duration:g} s, refresh every {args.interval:g} s: "
        f"{len(steady)} steady ticks, {steady[-1]['points']:,} points at the end"
        if steady
        else "no steady ticks"
    )
    phases = [(n, "ms") for n in (steady[0] if steady else {}) if n.startswith("poll_")]
    for name, unit in (
        ("read_kb", "KB"),
        ("poll_ms", "ms"),
        *[p for p in phases if p[0] != "poll_ms"],
        ("refresh_ms", "ms"),
        ("aggregate_ms", "ms"),
        ("table_ms", "ms"),
        ("kernel_ms", "ms"),
        ("cpu_ms", "ms"),
        ("not_engine_ms", "ms"),
        ("sent_kb", "KB"),
        ("load", ""),
    ):
        stats = percentiles([t[name] for t in steady])
        print(
            f"  {name:16s} p50 {stats['p50']:8.1f} {unit}  p95 {stats['p95']:8.1f} {unit}"
            f"  max {stats['max']:8.1f} {unit}"
        )
    last = steady[-5:]
    if last:
        print(
            f"  last 5 ticks: kernel {statistics.mean(t['kernel_ms'] for t in last):.1f} ms, "
            f"poll {statistics.mean(t['poll_ms'] for t in last):.1f} ms"
        )
    if profile is not None:
        pstats.Stats(profile).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(50)


if __name__ == "__main__":
    main()
