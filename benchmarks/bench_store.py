"""Logging and loading benchmarks for rungroup's own store.

    .venv/bin/python benchmarks/bench_store.py            # full size (50 M points on disk)
    .venv/bin/python benchmarks/bench_store.py --quick    # small, for a smoke run

1. `run.log()` of a 10-scalar dict: median time per call, beside W&B (offline mode) and
   MLflow's `log_metrics` (local SQLite store) where they are installed.
2. `rungroup.load()` of 1,000 runs x 10,000 steps x 5 metrics (50 M points), history
   collected in memory: median wall time over repeats, each in a fresh process, and the peak
   memory of that process above what it had after the imports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

DATA = Path(__file__).parent / ".data"
METRICS = ("loss", "acc", "lr", "grad_norm", "val_loss")


def median_log_call(log, calls: int) -> float:  # type: ignore[no-untyped-def]
    """Median seconds per call over `calls` calls, timed in batches of 100."""
    payload = {f"metric_{i}": 0.5 + i for i in range(10)}
    batch = 100
    timings = []
    for start in range(0, calls, batch):
        began = time.perf_counter()
        for step in range(start, start + batch):
            log(payload, step)
        timings.append((time.perf_counter() - began) / batch)
    return statistics.median(timings)


def bench_rungroup_log(calls: int) -> float:
    import rungroup as rg

    with tempfile.TemporaryDirectory() as folder:
        run = rg.init(dir=folder, project="bench")
        seconds = median_log_call(lambda data, step: run.log(data, step=step), calls)
        run.finish()
    return seconds


def bench_wandb_log(calls: int) -> float | None:
    try:
        import wandb
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as folder:
        os.environ["WANDB_SILENT"] = "true"
        run = wandb.init(project="bench", dir=folder, mode="offline")
        seconds = median_log_call(lambda data, step: run.log(data, step=step), calls)
        run.finish()
    return seconds


def bench_mlflow_log(calls: int) -> float | None:
    try:
        import mlflow
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as folder:
        mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
        with mlflow.start_run():
            seconds = median_log_call(lambda data, step: mlflow.log_metrics(data, step=step), calls)
    return seconds


def _write_run(arguments: tuple[str, int, int, int]) -> None:
    import math

    import rungroup as rg

    root, index, steps, groups = arguments
    with rg.init(
        dir=root,
        project="bench",
        group=f"g{index % groups}",
        config={"lr": 10 ** -(index % 4), "seed": index},
    ) as run:
        for step in range(steps):
            x = step / steps
            run.log(
                {
                    "loss": math.exp(-3 * x) + 0.01 * (index % 7),
                    "acc": 1 - math.exp(-3 * x),
                    "lr": 0.1 * (1 - x),
                    "grad_norm": 1 + math.sin(step / 50),
                    "val_loss": math.exp(-2 * x),
                },
                step=step,
            )


def make_store(root: Path, runs: int, steps: int) -> Path:
    """The benchmark store, written through the real `Run.log` by two processes."""
    marker = root / f".complete-{runs}x{steps}"
    if marker.exists():
        return root
    if root.exists():
        raise SystemExit(f"{root} exists but is incomplete: delete it and run again")
    root.mkdir(parents=True)
    began = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_write_run, [(str(root), i, steps, 20) for i in range(runs)], chunksize=8))
    marker.write_text(f"written in {time.perf_counter() - began:.0f} s\n")
    return root


LOAD_CHILD = """
import json, resource, sys, time
import polars as pl
import rungroup as rg
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = peak()
began = time.perf_counter()
runs = rg.load(sys.argv[1])
loaded = time.perf_counter() - began
loaded_peak = peak() - base
in_memory = runs.history.select("run_id", "metric", "step", "time", "value").collect()
resident = in_memory.estimated_size()
del in_memory
began = time.perf_counter()
history = runs.history.collect()
collected = time.perf_counter() - began
print(json.dumps({
    "load_seconds": loaded,
    "load_peak_bytes": loaded_peak,
    "resident_bytes": resident,
    "collect_seconds": collected,
    "collect_peak_bytes": peak() - base,
    "frame_bytes": history.estimated_size(),
    "points": history.height,
    "runs": len(runs),
}))
"""


def bench_load(root: Path, repeats: int) -> list[dict[str, float]]:
    results = []
    for _ in range(repeats):
        output = subprocess.run(
            [sys.executable, "-c", LOAD_CHILD, str(root)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results.append(json.loads(output))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    if options.quick:
        options.runs, options.steps, options.calls, options.repeats = 20, 500, 2000, 2

    print(f"log() of a 10-scalar dict, median of batches of 100 over {options.calls} calls")
    ours = bench_rungroup_log(options.calls)
    print(f"  rungroup  {ours * 1e6:8.2f} us/call")
    for name, bench in (("wandb", bench_wandb_log), ("mlflow", bench_mlflow_log)):
        theirs = bench(options.calls // 10 if name == "mlflow" else options.calls)
        if theirs is None:
            print(f"  {name:8s}  not installed")
        else:
            print(f"  {name:8s}  {theirs * 1e6:8.2f} us/call  ({theirs / ours:,.0f}x rungroup)")

    root = make_store(DATA / f"store-{options.runs}x{options.steps}", options.runs, options.steps)
    points = options.runs * options.steps * len(METRICS)
    raw = points * 8
    results = bench_load(root, options.repeats)
    assert results[0]["points"] == points, results[0]
    mib = 2**20
    print(
        f"load {options.runs} runs x {options.steps} steps x {len(METRICS)} metrics "
        f"({points / 1e6:g} M points; raw float64 values {raw / mib:,.0f} MiB), "
        f"median of {options.repeats} fresh processes"
    )
    for label, key in (("rungroup.load()", "load"), ("+ history.collect()", "collect")):
        seconds = statistics.median(r[f"{key}_seconds"] for r in results)
        each = ", ".join(f"{r[f'{key}_seconds']:.2f}" for r in results)
        peak = max(r[f"{key}_peak_bytes"] for r in results)
        print(
            f"  {label:20s} {seconds:6.2f} s (each: {each}); peak memory above imports "
            f"{peak / mib:,.0f} MiB = {peak / raw:.2f}x raw"
        )
    resident, frame = results[0]["resident_bytes"], results[0]["frame_bytes"]
    print(
        f"  history held in memory {resident / mib:,.0f} MiB "
        f"({resident / points:.0f} bytes/point); "
        f"collected with timestamp {frame / mib:,.0f} MiB ({frame / points:.0f} bytes/point)"
    )


if __name__ == "__main__":
    main()
