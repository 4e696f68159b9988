"""Loading other trackers' runs: rungroup's loaders beside the obvious alternative.

    .venv/bin/python benchmarks/bench_sources.py              # 1,000 runs x 1,000 steps x 5
    .venv/bin/python benchmarks/bench_sources.py --runs 50    # smaller, for a smoke run
    .venv/bin/python benchmarks/bench_sources.py --cached-only  # rg.load cold vs cached only
    .venv/bin/python benchmarks/bench_sources.py --first-reads --only wandb  # issue #14's rates

Fixtures (kept in benchmarks/.data/sources-<runs>/, reused on the next run):
- MLflow SQLite: the schema is created by mlflow itself; the 1,000 runs and 5 M metric rows
  are inserted with sqlite3 into mlflow's own tables (creating them through the client would
  take hours). mlflow's client reads the same file back for the comparison.
- MLflow file store: the same runs as the files mlflow's FileStore writes (meta.yaml,
  metrics/<key> lines of "timestamp value step", params/, tags/).
- TensorBoard: one run written by tensorboardX (1,000 steps x 5 scalars), its event file
  copied into 1,000 run folders.
- W&B: one run written by wandb in offline mode, its folder copied 1,000 times.
- CSV: 1,000 `progress.csv` files written with the csv module.
- rungroup's own store (for `--first-reads`' ratio): the same values as the records
  `Run.log` writes, encoded by `store.encode_record`.

`--first-reads`: each format's own reader (`rg.load_wandb` etc., which never use the cache: what a
first open costs),
as points per second and as a ratio to the own store's load measured in the same process.

The cached column: `rungroup.load(source)` once with an empty cache (cold: read the source and
fill the cache, in benchmarks/.data/cache unless RUNGROUP_CACHE_DIR says otherwise), then the
median of `--repeats` loads from the cache.

Each measurement is the median of `--repeats` wall times in this process, with the whole
history collected into memory. The alternatives run on a subset of the runs when they are
slow (`--subset`), and the figure is scaled to the full size, which is said in the output.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / ".data"
METRICS = ("loss", "acc", "lr", "grad_norm", "val_loss")


def value(run: int, metric: int, step: int) -> float:
    return 1.0 / (1.0 + step * 0.01 * (metric + 1)) + run * 1e-4


def timed(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeats):
        began = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


# --- fixtures -------------------------------------------------------------------------------


def make_mlflow_sqlite(folder: Path, runs: int, steps: int) -> Path:
    path = folder / "mlflow.db"
    if path.exists():
        return path
    from mlflow.tracking import MlflowClient

    partial = folder / "mlflow.partial.db"
    partial.unlink(missing_ok=True)
    client = MlflowClient(tracking_uri=f"sqlite:///{partial}")
    experiment = client.create_experiment("bench")
    template = client.create_run(experiment, run_name="template")  # one real run for layout
    client.delete_run(template.info.run_id)
    connection = sqlite3.connect(partial)
    start = 1_700_000_000_000
    run_rows, param_rows, tag_rows, latest_rows = [], [], [], []
    for run in range(runs):
        run_id = uuid.UUID(int=random.Random(run).getrandbits(128)).hex
        run_rows.append(
            (
                run_id,
                f"run-{run}",
                "LOCAL",
                "",
                "",
                "bench",
                "FINISHED",
                start,
                start + steps * 10,
                "",
                "active",
                f"file:///tmp/{run_id}",
                int(experiment),
            )
        )
        param_rows += [("lr", str(10 ** -(run % 4)), run_id), ("seed", str(run % 5), run_id)]
        tag_rows += [("group", f"lr-{run % 4}", run_id), ("mlflow.runName", f"run-{run}", run_id)]
        for m, key in enumerate(METRICS):
            latest_rows.append(
                (key, value(run, m, steps - 1), start + (steps - 1) * 10, steps - 1, 0, run_id)
            )
        connection.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            (
                (key, value(run, m, step), start + step * 10, run_id, step)
                for step in range(steps)
                for m, key in enumerate(METRICS)
            ),
        )
    connection.executemany(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id,"
        " status, start_time, end_time, source_version, lifecycle_stage, artifact_uri,"
        " experiment_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        run_rows,
    )
    connection.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", param_rows)
    connection.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tag_rows)
    connection.executemany(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        latest_rows,
    )
    connection.commit()
    connection.close()
    partial.rename(path)
    return path


def make_mlflow_files(folder: Path, runs: int, steps: int) -> Path:
    root = folder / "mlruns"
    if root.exists():
        return root
    partial = folder / "mlruns.partial"
    shutil.rmtree(partial, ignore_errors=True)
    exp = partial / "1"
    exp.mkdir(parents=True)
    (exp / "meta.yaml").write_text(
        "artifact_location: file:///tmp/1\nexperiment_id: '1'\nlifecycle_stage: active\n"
        "name: bench\n"
    )
    start = 1_700_000_000_000
    for run in range(runs):
        run_id = uuid.UUID(int=random.Random(run).getrandbits(128)).hex
        base = exp / run_id
        for sub in ("metrics", "params", "tags"):
            (base / sub).mkdir(parents=True)
        (base / "meta.yaml").write_text(
            f"artifact_uri: file:///tmp/{run_id}\nend_time: {start + steps * 10}\n"
            f"experiment_id: '1'\nlifecycle_stage: active\nrun_id: {run_id}\n"
            f"run_name: run-{run}\nstart_time: {start}\nstatus: 3\nuser_id: bench\n"
        )
        (base / "params" / "lr").write_text(str(10 ** -(run % 4)))
        (base / "params" / "seed").write_text(str(run % 5))
        (base / "tags" / "group").write_text(f"lr-{run % 4}")
        for m, key in enumerate(METRICS):
            lines = [f"{start + step * 10} {value(run, m, step)!r} {step}" for step in range(steps)]
            (base / "metrics" / key).write_text("\n".join(lines) + "\n")
    partial.rename(root)
    return root


def make_tensorboard(folder: Path, runs: int, steps: int) -> Path:
    root = folder / "tensorboard"
    if root.exists():
        return root
    from tensorboardX import SummaryWriter

    partial = folder / "tensorboard.partial"
    shutil.rmtree(partial, ignore_errors=True)
    writer = SummaryWriter(str(partial / "lr-0" / "seed_0"), max_queue=100_000, flush_secs=3600)
    for step in range(steps):
        for m, key in enumerate(METRICS):
            writer.add_scalar(key, value(0, m, step), step)
    writer.close()
    source = next((partial / "lr-0" / "seed_0").glob("events.out.tfevents.*"))
    for run in range(1, runs):
        target = partial / f"lr-{run % 4}" / f"seed_{run}"
        target.mkdir(parents=True)
        shutil.copy(source, target / source.name)
    partial.rename(root)
    return root


def make_wandb(folder: Path, runs: int, steps: int) -> Path:
    root = folder / "wandb"
    if root.exists():
        return root
    partial = folder / "wandb.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    script = f"""
import wandb
run = wandb.init(project="bench", group="lr-0", dir={str(partial)!r}, config={{"lr": 1}})
for step in range({steps}):
    run.log({{key: 1.0 / (1.0 + step * 0.01 * (m + 1)) for m, key in enumerate({METRICS!r})}},
            step=step)
run.finish()
"""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    first = next((partial / "wandb").glob("offline-run-*"))
    shutil.rmtree(partial / "wandb" / "latest-run", ignore_errors=True)
    for run in range(1, runs):
        shutil.copytree(first, partial / "wandb" / f"{first.name}-{run}")
    (partial / "wandb").rename(root)
    shutil.rmtree(partial)
    return root


def make_csv(folder: Path, runs: int, steps: int) -> Path:
    root = folder / "csv"
    if root.exists():
        return root
    partial = folder / "csv.partial"
    shutil.rmtree(partial, ignore_errors=True)
    for run in range(runs):
        target = partial / f"lr-{run % 4}" / f"seed_{run}"
        target.mkdir(parents=True)
        with (target / "progress.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step", *METRICS])
            for step in range(steps):
                writer.writerow([step, *(value(run, m, step) for m in range(len(METRICS)))])
    partial.rename(root)
    return root


def make_store(folder: Path, runs: int, steps: int) -> Path:
    import array
    from datetime import datetime, timezone

    from rungroup import store

    root = folder / "store"
    if root.exists():
        return root
    partial = folder / "store.partial"
    shutil.rmtree(partial, ignore_errors=True)
    names = list(METRICS)
    for run in range(runs):
        run_id = f"r{run:05d}"
        target = store.run_dir(partial, "bench", run_id)
        target.mkdir(parents=True)
        step_column = [step for step in range(steps) for _ in names]
        walls = [1.7e9 + run + step * 0.01 for step in range(steps) for _ in names]
        codes = [code for _ in range(steps) for code in range(len(names))]
        values = [value(run, m, step) for step in range(steps) for m in range(len(names))]
        record = store.encode_record(
            names,
            array.array("q", step_column),
            array.array("d", walls),
            array.array("I", codes),
            array.array("d", values),
            sequence=0,
        )
        (target / store.HISTORY_FILE).write_bytes(store.HISTORY_MAGIC + record)
        created = datetime.fromtimestamp(1.7e9 + run, timezone.utc).isoformat()
        store.write_json_atomically(
            target / store.META_FILE,
            {
                "config": {"group": f"lr-{run % 4}", "seed": run},
                "created_at": created,
                "exit_code": 0,
                "finished_at": created,
                "format_version": store.FORMAT_VERSION,
                "group": None,
                "heartbeat_at": created,
                "host": "bench",
                "id": run_id,
                "job_type": None,
                "name": run_id,
                "pid": 0,
                "project": "bench",
                "runtime": steps * 0.01,
                "state": "finished",
                "summary": {},
                "tags": [],
                "updated_at": created,
            },
        )
    partial.rename(root)
    return root


# --- alternatives ---------------------------------------------------------------------------


def mlflow_client_loop(db: Path, subset: int) -> int:
    """What a user writes with mlflow: search the runs, then get_metric_history per metric."""
    import pandas as pd
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(experiments, max_results=subset)
    frames = []
    for run in found[:subset]:
        for key in run.data.metrics:
            history = client.get_metric_history(run.info.run_id, key)
            frames.append(
                pd.DataFrame(
                    {
                        "run_id": run.info.run_id,
                        "metric": key,
                        "step": [p.step for p in history],
                        "value": [p.value for p in history],
                    }
                )
            )
    return len(pd.concat(frames))


def tbparse_reader(logdir: Path, subset: list[Path]) -> int:
    from tbparse import SummaryReader

    total = 0
    for folder in subset:
        total += len(SummaryReader(str(folder), pivot=False).scalars)
    return total


def event_accumulator(subset: list[Path]) -> int:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    total = 0
    for folder in subset:
        accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            total += len(accumulator.Scalars(tag))
    return total


def pandas_csv_loop(files: list[Path]) -> int:
    import pandas as pd

    frames = []
    for path in files:
        frame = pd.read_csv(path)
        frame["run_id"] = str(path.parent)
        frames.append(frame.melt(id_vars=["run_id", "step"], var_name="metric"))
    return len(pd.concat(frames))


FIRST_READS = ("mlflow-sqlite", "mlflow-files", "tensorboard", "wandb", "csv")


def first_reads(
    readers: dict[str, Callable[[], Any]],
    own_store: Callable[[], Any],
    chosen: list[str],
    load: Callable[[Callable[[], Any]], tuple[float, int]],
    report: Callable[[str, str, float, int, bool], None],
) -> None:
    """Issue #14's first-read rates: each reader against the own store, in one process."""
    own_seconds, own_rows = load(own_store)
    report("own store", "rungroup.load", own_seconds, own_rows, False)
    for name in chosen:
        seconds, rows = load(readers[name])
        report(name, "first read (no cache)", seconds, rows, False)
        label = "times the own store's time"
        print(f"{'':18} {label:42} {seconds / own_seconds:9.1f} x", flush=True)


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--subset", type=int, default=50, help="runs for slow alternatives")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--cached-only", action="store_true", help="only rungroup.load, cold and cached"
    )
    parser.add_argument(
        "--first-reads",
        action="store_true",
        help="only each format's reader (no cache), with its ratio to the own store",
    )
    parser.add_argument(
        "--only",
        choices=FIRST_READS,
        action="append",
        help="with --first-reads: these sources only (repeatable)",
    )
    args = parser.parse_args()
    os.environ.setdefault("RUNGROUP_CACHE_DIR", str(DATA / "cache"))

    import polars as pl

    import rungroup as rg

    folder = DATA / f"sources-{args.runs}x{args.steps}"
    folder.mkdir(parents=True, exist_ok=True)
    points = args.runs * args.steps * len(METRICS)
    scale = args.runs / min(args.subset, args.runs)
    results: list[dict[str, Any]] = []

    def report(source: str, reader: str, seconds: float, rows: int, scaled: bool) -> None:
        results.append(
            {
                "source": source,
                "reader": reader,
                "seconds": round(seconds, 3),
                "rows": rows,
                "scaled_from_subset": scaled,
            }
        )
        note = f" (measured on {args.subset} runs, x{scale:g})" if scaled else ""
        rate = f"{rows / seconds / 1e6:8.2f} M points/s" if seconds > 0 else ""
        print(
            f"{source:18} {reader:42} {seconds:9.2f} s  {rows:>10,} points {rate}{note}",
            flush=True,
        )

    def load(function: Callable[[], rg.Runs]) -> tuple[float, int]:
        seconds, runs = timed(lambda: function().collect(), args.repeats)
        return seconds, runs.history.select(pl.len()).collect().item()

    def load_once(function: Callable[[], rg.Runs]) -> tuple[float, int]:
        seconds, runs = timed(lambda: function().collect(), 1)
        return seconds, runs.history.select(pl.len()).collect().item()

    def write_json() -> None:
        if args.json:
            args.json.write_text(
                json.dumps(
                    {"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2
                )
            )

    print(f"{args.runs} runs x {args.steps} steps x {len(METRICS)} metrics = {points:,} points")
    print("making fixtures (once) ...", flush=True)
    db = make_mlflow_sqlite(folder, args.runs, args.steps)
    mlruns = make_mlflow_files(folder, args.runs, args.steps)
    tb = make_tensorboard(folder, args.runs, args.steps)
    wb = make_wandb(folder, args.runs, args.steps)
    csv_root = make_csv(folder, args.runs, args.steps)
    subset_runs = min(args.subset, args.runs)
    if args.first_reads:
        own = make_store(folder, args.runs, args.steps)
        first_reads(
            {
                "mlflow-sqlite": lambda: rg.load_mlflow(db, progress_bar=False),
                "mlflow-files": lambda: rg.load_mlflow(mlruns, progress_bar=False),
                "tensorboard": lambda: rg.load_tensorboard(
                    tb / "{group}" / "seed_{seed}", progress_bar=False
                ),
                "wandb": lambda: rg.load_wandb(wb, progress_bar=False),
                "csv": lambda: rg.load_csv(
                    csv_root / "{group}" / "seed_{seed}" / "progress.csv",
                    progress_bar=False,
                ),
            },
            lambda: rg.load(own, progress_bar=False),
            args.only or list(FIRST_READS),
            load,
            report,
        )
        write_json()
        return

    from rungroup.sources import cache

    sources = {
        "MLflow SQLite": db,
        "MLflow files": mlruns,
        "TensorBoard": tb / "{group}" / "seed_{seed}",
        "W&B offline": wb,
        "CSV": csv_root / "{group}" / "seed_{seed}" / "progress.csv",
    }
    for name, source in sources.items():
        cache.clear()
        cold, rows = load_once(lambda s=source: rg.load(s, progress_bar=False))
        report(name, "rungroup.load, cold (fills the cache)", cold, rows, False)
        seconds, rows = load(lambda s=source: rg.load(s, progress_bar=False))
        report(name, "rungroup.load, cached", seconds, rows, False)
    if args.cached_only:
        write_json()
        return

    seconds, rows = load(lambda: rg.load_mlflow(db, progress_bar=False))
    report("MLflow SQLite", "rungroup.load_mlflow", seconds, rows, False)
    seconds, rows = timed(lambda: mlflow_client_loop(db, subset_runs), 1)
    report(
        "MLflow SQLite",
        "MlflowClient.get_metric_history loop",
        seconds * scale,
        int(rows * scale),
        scale != 1,
    )

    seconds, rows = load(lambda: rg.load_mlflow(mlruns, progress_bar=False))
    report("MLflow files", "rungroup.load_mlflow", seconds, rows, False)

    seconds, rows = load(
        lambda: rg.load_tensorboard(tb / "{group}" / "seed_{seed}", progress_bar=False)
    )
    report("TensorBoard", "rungroup.load_tensorboard", seconds, rows, False)
    seconds, rows = load(
        lambda: rg.load_tensorboard(
            tb / "{group}" / "seed_{seed}", check_crc=False, progress_bar=False
        )
    )
    report("TensorBoard", "rungroup.load_tensorboard(check_crc=False)", seconds, rows, False)
    tb_subset = sorted(tb.glob("*/seed_*"))[:subset_runs]
    seconds, rows = timed(lambda: tbparse_reader(tb, tb_subset), 1)
    report(
        "TensorBoard",
        "tbparse.SummaryReader per run",
        seconds * scale,
        int(rows * scale),
        scale != 1,
    )
    seconds, rows = timed(lambda: event_accumulator(tb_subset), 1)
    report(
        "TensorBoard",
        "tensorboard EventAccumulator per run",
        seconds * scale,
        int(rows * scale),
        scale != 1,
    )

    seconds, rows = load(lambda: rg.load_wandb(wb, progress_bar=False))
    report("W&B offline", "rungroup.load_wandb", seconds, rows, False)

    seconds, rows = load(
        lambda: rg.load_csv(
            csv_root / "{group}" / "seed_{seed}" / "progress.csv", progress_bar=False
        )
    )
    report("CSV", "rungroup.load_csv", seconds, rows, False)
    files = sorted(csv_root.glob("*/seed_*/progress.csv"))
    seconds, rows = timed(lambda: pandas_csv_loop(files), args.repeats)
    report("CSV", "pandas.read_csv + melt loop", seconds, rows, False)

    write_json()


if __name__ == "__main__":
    main()
