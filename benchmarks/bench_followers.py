"""Following live sources: what one poll costs while runs are written.

    .venv/bin/python benchmarks/bench_followers.py              # 100 runs, 1,000 steps x 2
    .venv/bin/python benchmarks/bench_followers.py --runs 20    # smaller, for a smoke run

For each source: `--runs` runs with 2 metrics and 1,000 steps are written, then followed.
"first" is the first poll (a full read, with the history collected), "idle" a poll after
nothing was written, "tick" a poll after every run logged 10 more steps of both metrics
(the median of `--ticks` ticks; the writing is not timed).

- TensorBoard: one tensorboardX `SummaryWriter` per run, flushed after each tick.
- MLflow SQLite: the schema created by mlflow; the first 1,000 steps inserted with sqlite3
  into mlflow's tables, the ticks logged with `MlflowClient.log_batch`.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rungroup.sources.mlflow.follower import MlflowFollower
from rungroup.sources.tensorboard.follower import TensorBoardFollower

STEPS = 1000
TICK = 10


def _measure(
    poll: Callable[[], Any], write: Callable[[int], None], ticks: int, read: Callable[[], Any]
) -> dict[str, float | str]:
    start = time.perf_counter()
    runs, _ = poll()
    runs.history.collect()
    first = time.perf_counter() - start
    start = time.perf_counter()
    poll()
    idle = time.perf_counter() - start
    times = []
    for tick in range(ticks):
        write(STEPS + tick * TICK)
        start = time.perf_counter()
        poll()
        times.append(time.perf_counter() - start)
    return {
        "first": first,
        "idle": idle,
        "tick": statistics.median(times),
        "tick read": str(read()),
    }


def bench_tensorboard(root: Path, runs: int, ticks: int) -> dict[str, float | str]:
    from tensorboardX import SummaryWriter

    writers = [
        SummaryWriter(str(root / f"g{i % 4}" / f"seed_{i}"), max_queue=10**6, flush_secs=10**6)
        for i in range(runs)
    ]

    def write(start: int, stop: int) -> None:
        for writer in writers:
            for step in range(start, stop):
                writer.add_scalar("loss", 1.0 / (step + 1), step)
                writer.add_scalar("acc", step / STEPS, step)
            writer.flush()
        time.sleep(0.2)  # tensorboardX writes from a thread

    write(0, STEPS)
    follower = TensorBoardFollower(root)
    result = _measure(
        follower.poll,
        lambda start: write(start, start + TICK),
        ticks,
        lambda: f"{follower.bytes_read} bytes",
    )
    for writer in writers:
        writer.close()
    return result


def bench_mlflow(folder: Path, runs: int, ticks: int) -> dict[str, float | str]:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    path = folder / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    experiment = client.create_experiment("bench")
    ids = [
        client.create_run(experiment, run_name=f"r{i}", tags={"group": f"g{i % 4}"}).info.run_id
        for i in range(runs)
    ]
    base = int(time.time() * 1000)
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            [
                (key, 1.0 / (step + 1), base + step, run_id, step)
                for run_id in ids
                for step in range(STEPS)
                for key in ("loss", "acc")
            ],
        )
        connection.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?, ?, ?, ?, 0, ?)",
            [
                (key, 0.001, base + STEPS - 1, STEPS - 1, run_id)
                for run_id in ids
                for key in ("loss", "acc")
            ],
        )
    follower = MlflowFollower(path)

    def write(start: int) -> None:
        for run_id in ids:
            client.log_batch(
                run_id,
                metrics=[
                    Metric(key, 0.5, base + step, step)
                    for step in range(start, start + TICK)
                    for key in ("loss", "acc")
                ],
            )

    result = _measure(follower.poll, write, ticks, lambda: f"{follower.rows_read} rows")
    follower.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rungroup-bench-follow-"))
    try:
        for name, bench in (("tensorboard", bench_tensorboard), ("mlflow", bench_mlflow)):
            target = folder / name
            target.mkdir()
            result = bench(target, args.runs, args.ticks)
            print(
                f"{name:12s} first {result['first'] * 1e3:7.0f} ms  idle "
                f"{result['idle'] * 1e3:6.1f} ms  tick {result['tick'] * 1e3:6.1f} ms  "
                f"(last tick read {result['tick read']})"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
