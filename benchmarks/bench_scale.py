"""Big projects: loading and aggregating 100 M and 1 B points, with peak memory.

    .venv/bin/python benchmarks/bench_scale.py --workload 100m    # 1,000 runs x 10,000 x 10
    .venv/bin/python benchmarks/bench_scale.py --workload 1b      # 2,000 runs x 50,000 x 10
    .venv/bin/python benchmarks/bench_scale.py --workload smoke   # 50 runs x 1,000 x 10

The data is rungroup's own store, written once into the git-ignored benchmarks/.data/scale-*
folder by the store's own record encoder (`store.encode_record`, the frames `Run.log` writes,
a record per 5,000 steps): logging 1 B points through `Run.log` would take hours. Every run has
`config.lr` (4 values) and `config.seed`; metric `m0` .. `m9` logged at every step.

Each measurement runs in a fresh process and reports its wall time and the peak resident
memory of the whole process (VmHWM, imports included):
- `load`: `rg.load(root)` then one `aggregate` of metric `m0` grouped by `config.lr` (mean,
  std band, 1,500 points), then a regrouping by `config.seed` in the same workspace;
- resident: the process's memory after the load less before it (VmRSS), per point; with
  `--resident`, also the bytes per point of the whole history collected in the long form.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

DATA = Path(__file__).parent / ".data"
WORKLOADS = {
    "smoke": (50, 1_000, 10),
    "100m": (1_000, 10_000, 10),
    "1b": (2_000, 50_000, 10),
}
STEPS_PER_RECORD = 5_000


def _write_run(arguments: tuple[str, int, int, int]) -> None:
    import array
    from datetime import datetime, timezone

    import numpy as np

    from rungroup import store

    root, index, steps, metrics = arguments
    run_id = f"r{index:05d}"
    folder = store.run_dir(Path(root), "scale", run_id)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"m{k}" for k in range(metrics)]
    started = 1.7e9 + index
    with (folder / store.HISTORY_FILE).open("wb") as history:
        history.write(store.HISTORY_MAGIC)
        for sequence, first in enumerate(range(0, steps, STEPS_PER_RECORD)):
            step = np.arange(first, min(first + STEPS_PER_RECORD, steps), dtype=np.int64)
            x = step / steps
            values = np.stack(
                [np.exp(-(k + 1) * x) + 1e-3 * (index % 7) + 1e-4 * k for k in range(metrics)],
                axis=1,
            ).ravel()
            record = store.encode_record(
                names,
                array.array("q", np.repeat(step, metrics).tobytes()),
                array.array("d", np.repeat(started + step * 0.01, metrics).tobytes()),
                array.array("I", np.tile(np.arange(metrics, dtype=np.uint32), step.size).tobytes()),
                array.array("d", values.tobytes()),
                sequence=sequence,
            )
            history.write(record)
    created = datetime.fromtimestamp(started, timezone.utc).isoformat()
    store.write_json_atomically(
        folder / store.META_FILE,
        {
            "config": {"lr": 10.0 ** -(index % 4), "seed": index // 4},
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
            "project": "scale",
            "runtime": steps * 0.01,
            "state": "finished",
            "summary": {},
            "tags": [],
            "updated_at": created,
        },
    )


def make_data(workload: str) -> Path:
    runs, steps, metrics = WORKLOADS[workload]
    root = DATA / f"scale-{workload}"
    marker = root / ".complete"
    if marker.exists():
        return root
    if root.exists():
        raise SystemExit(f"{root} exists but is incomplete: delete it and run again")
    root.mkdir(parents=True)
    began = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_write_run, [(str(root), i, steps, metrics) for i in range(runs)]))
    elapsed = time.perf_counter() - began
    marker.write_text(f"{runs * steps * metrics} points written in {elapsed:.0f} s\n")
    return root


CHILD = """
import json, sys, time
from pathlib import Path
def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
def peak():
    return status("VmHWM")
import rungroup as rg
from rungroup.engine import Workspace
import polars, numpy, rungroup.sources.store  # imports out of the resident figure
fields = dict(metrics=["m0"], line="mean", band="std", points=1500)
before = status("VmRSS")
began = time.perf_counter()
runs = rg.load(sys.argv[1])
loaded = time.perf_counter() - began
load_peak = peak()
resident = status("VmRSS") - before
workspace = Workspace(runs)
began = time.perf_counter()
first = workspace.aggregate(rg.View(group_by=["config.lr"], **fields))
aggregated = time.perf_counter() - began
began = time.perf_counter()
workspace.aggregate(rg.View(group_by=["config.seed"], **fields))
regrouped = time.perf_counter() - began
aggregate_peak = peak()
result = {"load_seconds": loaded, "load_peak_bytes": load_peak, "resident_bytes": resident,
          "aggregate_seconds": aggregated, "regroup_seconds": regrouped,
          "aggregate_peak_bytes": aggregate_peak, "rows": first.height, "runs": len(runs)}
if sys.argv[2] == "resident":
    history = runs.history.collect()
    result["long_bytes_per_point"] = history.estimated_size() / max(history.height, 1)
print(json.dumps(result))
"""


OUT_OF_CORE_CHILD = """
import json, statistics, sys, time
from pathlib import Path
def peak():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
import rungroup as rg
from rungroup.engine import Workspace
import rungroup.widget, rungroup.sources.store.outofcore  # imports out of the timings
fields = dict(metrics=["m0"], line="mean", band="std", points=1500, align="bucket")
began = time.perf_counter()
runs = rg.load(sys.argv[1], out_of_core=True)
loaded = time.perf_counter() - began
load_peak = peak()
workspace = Workspace(runs)
began = time.perf_counter()
first = workspace.aggregate(rg.View(group_by=["config.lr"], **fields))
aggregated = time.perf_counter() - began
began = time.perf_counter()
workspace.aggregate(rg.View(group_by=["config.seed"], **fields))
regrouped = time.perf_counter() - began
aggregate_peak = peak()
# the Explorer's Python path of a group-by change: the trait set, then the browser's data
# request answered (engine, chart spec, Arrow payload), each change another grouping. The
# groupings are bench_widget's (2 to 10 groups each, more than the widget keeps computed):
# its config keys added to the runs table, the history and provider those of the load.
import numpy, polars as pl
from benchmarks.bench_widget import GROUPINGS
rng = numpy.random.default_rng(0)
n = len(runs)
keys = {"config.a": rng.integers(0, 10, n), "config.b": rng.choice([0.1, 0.03, 0.01], n),
        "config.c": rng.integers(0, 4, n), "config.d": rng.integers(0, 3, n),
        "config.e": rng.integers(0, 6, n), "config.f": rng.integers(0, 2, n),
        "config.g": rng.integers(0, 8, n)}
table = runs.runs.with_columns(group=pl.Series([f"g{i % 8}" for i in range(n)]),
                               **{k: pl.Series(v) for k, v in keys.items()})
shown = rg.Runs(table, runs.history, validate=False, provider=runs.provider)
explorer = rg.Explorer(shown, group_by="config.a", **fields)
explorer.handle({"kind": "data", "id": 0})
repaints = []
for i in range(int(sys.argv[2])):
    explorer.group_by = [GROUPINGS[(i + 1) % len(GROUPINGS)]]
    began = time.perf_counter()
    reply, _ = explorer.handle({"kind": "data", "id": i + 1})
    repaints.append(time.perf_counter() - began)
    assert reply["ok"], reply
seed_began = time.perf_counter()
explorer.group_by = ["config.seed"]  # a series per 4 runs (1 B: 500 series)
explorer.handle({"kind": "data", "id": -1})
seed_repaint = time.perf_counter() - seed_began
print(json.dumps({"load_seconds": loaded, "load_peak_bytes": load_peak,
    "aggregate_seconds": aggregated, "regroup_seconds": regrouped,
    "aggregate_peak_bytes": aggregate_peak, "repaint_p50_seconds": statistics.median(repaints),
    "repaint_max_seconds": max(repaints), "seed_repaint_seconds": seed_repaint,
    "peak_bytes": peak(), "rows": first.height,
    "runs": len(runs), "provider_reads": runs.provider.reads}))
"""


def measure_out_of_core(root: Path, repaints: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", OUT_OF_CORE_CHILD, str(root), str(repaints)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],  # benchmarks.bench_widget importable
        env={**os.environ, "NUMPY_MADVISE_HUGEPAGE": "0"},
    )
    if done.returncode:
        raise SystemExit(f"the measuring process failed:\n{done.stderr[-4000:]}")
    output = done.stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def measure(root: Path, resident: bool) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), "resident" if resident else "-"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "NUMPY_MADVISE_HUGEPAGE": "0"},
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="smoke")
    parser.add_argument(
        "--resident", action="store_true", help="also collect the whole history in the long form"
    )
    parser.add_argument(
        "--out-of-core",
        action="store_true",
        help="load with out_of_core=True (twice: building the column cache, then warm), "
        "aggregate with align='bucket' and time the Explorer's repaint",
    )
    parser.add_argument("--repaints", type=int, default=12, help="group-by changes timed")
    args = parser.parse_args()
    runs, steps, metrics = WORKLOADS[args.workload]
    began = time.perf_counter()
    root = make_data(args.workload)
    print(
        f"data: {root} ({runs} runs x {steps} steps x {metrics} metrics, "
        f"ready in {time.perf_counter() - began:.0f} s)"
    )
    if args.out_of_core:
        report_out_of_core(root, runs * steps * metrics, args.repaints)
        return
    result = measure(root, args.resident)
    rate = runs * steps * metrics / result["load_seconds"] / 1e6
    print(
        f"load {result['load_seconds']:.1f} s ({rate:.1f} M points/s), "
        f"peak RSS {result['load_peak_bytes'] / 2**30:.2f} GiB"
    )
    print(
        f"aggregate m0 by config.lr {result['aggregate_seconds']:.2f} s, "
        f"regroup by config.seed {result['regroup_seconds']:.2f} s, "
        f"peak RSS {result['aggregate_peak_bytes'] / 2**30:.2f} GiB"
    )
    points = runs * steps * metrics
    print(f"resident after load: {result['resident_bytes'] / points:.1f} bytes per point")
    if "long_bytes_per_point" in result:
        print(f"history collected whole: {result['long_bytes_per_point']:.1f} bytes per point")


def report_out_of_core(root: Path, points: int, repaints: int) -> None:
    """Two fresh processes: the first builds the column cache if it is missing or stale
    (cold), the second finds it (warm); each aggregates, regroups and repaints."""
    for label in ("first", "second"):
        result = measure_out_of_core(root, repaints)
        print(
            f"{label} out-of-core load {result['load_seconds']:.1f} s "
            f"({points / result['load_seconds'] / 1e6:.1f} M points/s), "
            f"peak RSS {result['load_peak_bytes'] / 2**30:.2f} GiB"
        )
        print(
            f"  aggregate m0 by config.lr (bucket) {result['aggregate_seconds']:.2f} s, "
            f"regroup by config.seed {result['regroup_seconds']:.3f} s, "
            f"peak RSS {result['aggregate_peak_bytes'] / 2**30:.2f} GiB"
        )
        print(
            f"  Explorer repaint after a group-by change (Python path, {repaints} changes "
            "among bench_widget's groupings): "
            f"p50 {1000 * result['repaint_p50_seconds']:.0f} ms, "
            f"max {1000 * result['repaint_max_seconds']:.0f} ms; by config.seed (4 runs a series) "
            f"{1000 * result['seed_repaint_seconds']:.0f} ms; "
            f"peak RSS of the whole process {result['peak_bytes'] / 2**30:.2f} GiB; "
            f"runs read from disk {result['provider_reads']}"
        )


if __name__ == "__main__":
    main()
