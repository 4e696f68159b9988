"""A load after the source grew: the cache plus only what changed, against a full read.

    .venv/bin/python benchmarks/bench_cache_growth.py               # 200 runs x 1,000 steps x 5
    .venv/bin/python benchmarks/bench_cache_growth.py --runs 50     # smaller, for a smoke run

For MLflow SQLite, TensorBoard and W&B offline (the formats whose follower reads only what
changed, `sources/resume.py`), on a copy of `bench_sources.py`'s fixtures:

1. `rungroup.load(source)` with an empty cache (cold: the bulk reader, the entry written);
2. the source grows, `rungroup.load(source)`: the first change since a full read, read in
   full by a follower whose state is then kept in the entry;
3. the source grows again, `rungroup.load(source)`: resumed, only what changed is read;
4. `rungroup.load(source, cache=False)` of the same files: what a load without the cache, or
   a cache that rebuilds whole entries, costs.

Growth: TensorBoard, 100 steps x 5 scalars appended to one run's event file; MLflow SQLite,
100 steps x 5 metrics inserted for one run (as mlflow's `log_batch` writes rows); W&B, one
new run folder (a finished W&B run is never appended to). Each resumed load is checked equal
to the cache-less load (same runs table, same points).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_sources import (
    DATA,
    METRICS,
    make_mlflow_sqlite,
    make_tensorboard,
    make_wandb,
    value,
)


def timed(function: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    result = function()
    return time.perf_counter() - began, result


def tensorboard_records(start: int, stop: int) -> bytes:
    """The records of `stop - start` steps x 5 scalars, written by tensorboardX (without the
    file's first record, its file_version event)."""
    from tensorboardX import SummaryWriter

    from rungroup.sources.tensorboard.follower import complete_length

    with tempfile.TemporaryDirectory() as folder:
        writer = SummaryWriter(folder, max_queue=100_000, flush_secs=3600)
        for step in range(start, stop):
            for m, key in enumerate(METRICS):
                writer.add_scalar(key, value(0, m, step), step)
        writer.close()
        data = next(Path(folder).glob("events.out.tfevents.*")).read_bytes()
    first = complete_length(data[: 12 + int.from_bytes(data[:8], "little") + 4])
    return data[first:]


def grow_tensorboard(source: Path, steps: int, stage: int) -> None:
    target = next(source.glob("lr-0/seed_0/events.out.tfevents.*"))
    start = steps + stage * 100
    with target.open("ab") as handle:
        handle.write(tensorboard_records(start, start + 100))


def grow_sqlite(source: Path, steps: int, stage: int) -> None:
    connection = sqlite3.connect(source)
    run_id = connection.execute("SELECT run_uuid FROM runs LIMIT 1").fetchone()[0]
    start = steps + stage * 100
    connection.executemany(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
        "VALUES (?, ?, ?, ?, ?, 0)",
        (
            (key, value(0, m, step), 1_700_000_000_000 + step * 10, run_id, step)
            for step in range(start, start + 100)
            for m, key in enumerate(METRICS)
        ),
    )
    connection.commit()
    connection.close()


def grow_wandb(source: Path, steps: int, stage: int) -> None:
    first = sorted(source.glob("offline-run-*"))[0]
    shutil.copytree(first, source / f"{first.name}-grown-{stage}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()

    import polars as pl

    import rungroup as rg
    from rungroup.sources import cache

    fixtures = DATA / f"sources-{args.runs}x{args.steps}"
    fixtures.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rungroup-growth-", dir=DATA))
    os.environ["RUNGROUP_CACHE_DIR"] = str(work / "cache")
    made = {
        "MLflow SQLite": (make_mlflow_sqlite(fixtures, args.runs, args.steps), grow_sqlite),
        "TensorBoard": (make_tensorboard(fixtures, args.runs, args.steps), grow_tensorboard),
        "W&B offline": (make_wandb(fixtures, args.runs, args.steps), grow_wandb),
    }
    points = args.runs * args.steps * len(METRICS)
    print(f"{args.runs} runs x {args.steps} steps x {len(METRICS)} metrics = {points:,} points")
    print(
        f"{'source':14} {'cold':>8} {'1st change':>11} {'resumed':>8} {'full read':>10} "
        f"{'state MB':>9}"
    )

    def collected(runs: rg.Runs) -> pl.DataFrame:
        return (
            runs.history.collect()
            .with_columns(pl.col("run_id", "metric").cast(pl.String))
            .sort("run_id", "metric", "step", "time", "value")
        )

    try:
        for name, (fixture, grow) in made.items():
            copy = work / fixture.name
            if fixture.is_dir():
                shutil.copytree(fixture, copy)
            else:
                shutil.copy(fixture, copy)
            cache.clear()
            cold, _ = timed(lambda c=copy: rg.load(c, progress_bar=False).collect())
            grow(copy, args.steps, 0)
            first, _ = timed(lambda c=copy: rg.load(c, progress_bar=False).collect())
            grow(copy, args.steps, 1)
            resumed, runs = timed(lambda c=copy: rg.load(c, progress_bar=False).collect())
            full, fresh = timed(
                lambda c=copy: rg.load(c, cache=False, progress_bar=False).collect()
            )
            assert runs.runs.equals(fresh.runs), name
            assert collected(runs).equals(collected(fresh)), name
            state = sum(p.stat().st_size for p in (work / "cache").rglob("*.follower.*"))
            print(
                f"{name:14} {cold:7.2f}s {first:10.2f}s {resumed:7.2f}s {full:9.2f}s "
                f"{state / 1e6:9.1f}",
                flush=True,
            )
            del runs, fresh
            cache.clear()  # the disk the next source needs
            if copy.is_dir():
                shutil.rmtree(copy)
            else:
                copy.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
