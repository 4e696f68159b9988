"""A team's MLflow server in PostgreSQL: the aggregate computed in the database vs raw points.

    .venv/bin/python benchmarks/bench_server.py --runs 1000 --steps 100000 --rest 3  # 100 M
    .venv/bin/python benchmarks/bench_server.py --runs 100 --steps 10000     # 1 M points

Starts a real PostgreSQL 15 and a real `mlflow server` on it (tests/unit/server/
server_helpers.py), creates the runs through MLflow's own client (params `lr`, 4 values, and
`batch`, 5 values; the last point of metric `loss` logged by the client, so MLflow writes its
`latest_metrics`), then bulk-loads the other points into MLflow's own `metrics` table with
COPY. Then, each timed with the bytes the driver received (Arrow buffers):

- `load`: `rg.load("postgresql://...")` (runs, params, tags, latest metrics);
- `pushed`: `aggregate(metrics="loss", group_by="config.lr", align="bucket", points=1500)`
  on a `Workspace`: the per-run bucket sums computed in SQL (engine/provider.py);
- `regroup`: the same workspace grouped by `config.batch` (nothing asked of the database);
- `raw`: every raw point fetched through the same driver (ADBC, one SELECT streamed as
  Arrow batches) and, up to `--keep-raw-below` points, the same aggregate computed in memory
  from them (compared with the pushed-down one);
- `rest` (with `--rest N`): the `loss` history of N runs over MLflow's REST API
  (`metrics/get-history`, the call rungroup's REST reader makes), seconds and bytes, and the
  time for every point extrapolated from them.

`--uri`/`--tracking-uri` measure a database already filled (skipping the creation).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "server"))

from server_helpers import Server, running_mlflow_server, running_postgres

import rungroup as rg
from rungroup.engine import Workspace
from rungroup.runs import Runs

START = 1_700_000_000_000
LRS = (0.1, 0.03, 0.01, 0.003)
BATCHES = (16, 32, 64, 128, 256)


def create(server: Server, runs: int, steps: int) -> None:
    """The runs through MLflow's client, their points by COPY."""
    import psycopg2
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=server.tracking_uri)
    experiment = client.create_experiment("sweep")
    ids: list[str] = []
    began = time.perf_counter()
    for index in range(runs):
        run_id = client.create_run(experiment, start_time=START).info.run_id
        last = steps - 1
        client.log_batch(
            run_id,
            params=[
                Param("lr", str(LRS[index % len(LRS)])),
                Param("batch", str(BATCHES[index % len(BATCHES)])),
            ],
            metrics=[Metric("loss", _values(index, np.array([last]))[0], START + last, last)],
        )
        client.set_terminated(run_id, end_time=START + steps)
        ids.append(run_id)
    created = time.perf_counter() - began
    began = time.perf_counter()
    connection = psycopg2.connect(server.uri())
    with connection.cursor() as cursor:
        # MLflow's indexes and foreign key are dropped for the COPY and made again after it
        # with their own definitions (a bulk load's usual order: one sort per index instead
        # of 100 M insertions into three B-trees)
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'metrics' "
            "AND indexname <> 'metric_pk'"
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'metrics'::regclass"
        )
        constraints = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        for name, _ in constraints:
            cursor.execute(f"ALTER TABLE metrics DROP CONSTRAINT {name}")
        connection.commit()
        for index, run_id in enumerate(ids):
            step = np.arange(steps - 1)
            frame = pl.DataFrame(
                {
                    "key": "loss",
                    "value": _values(index, step),
                    "timestamp": START + step,
                    "run_uuid": run_id,
                    "step": step,
                    "is_nan": False,
                }
            )
            buffer = io.BytesIO()
            frame.write_csv(buffer, separator="\t", include_header=False)
            buffer.seek(0)
            cursor.copy_expert(
                "COPY metrics (key, value, timestamp, run_uuid, step, is_nan) FROM STDIN", buffer
            )
        connection.commit()
        # each its own transaction: one that fails (a full disk at 100 M points) is reported
        # and leaves the others built; VACUUM runs outside a transaction too
        connection.autocommit = True
        cursor.execute("SET maintenance_work_mem = '1GB'")
        statements = [f"ALTER TABLE metrics ADD CONSTRAINT {n} {d}" for n, d in constraints]
        for statement in [*statements, *(d for _, d in indexes)]:
            try:
                cursor.execute(statement)
            except psycopg2.Error as error:
                print(json.dumps({"not_built": statement, "error": str(error)}), flush=True)
        cursor.execute("VACUUM ANALYZE metrics")
    connection.close()
    print(
        json.dumps(
            {
                "created_runs_s": round(created, 1),
                "copied_points_s": round(time.perf_counter() - began, 1),
            }
        ),
        flush=True,
    )


def _values(index: int, step: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(index)
    lr = LRS[index % len(LRS)]
    return np.exp(-step * lr / 1000.0) + rng.normal(0.0, 0.05, step.size)


VIEW: dict[str, Any] = {
    "metrics": "loss",
    "group_by": "config.lr",
    "align": "bucket",
    "points": 1500,
}


def pushed(uri: str, experiments: list[str] | None) -> tuple[dict[str, Any], pl.DataFrame]:
    began = time.perf_counter()
    runs = rg.load(uri, experiments=experiments, timeout=1800)
    loaded = time.perf_counter() - began
    provider = runs.provider
    assert provider is not None
    received: list[int] = []
    original = provider.bucket_sums

    def counted(*args: Any) -> Any:
        answer = original(*args)
        received.append(0 if answer is None else answer.received)
        return answer

    provider.bucket_sums = counted  # type: ignore[method-assign]
    with Workspace(runs) as workspace:
        began = time.perf_counter()
        frame = workspace.aggregate(**VIEW)
        first = time.perf_counter() - began
        began = time.perf_counter()
        workspace.aggregate(**{**VIEW, "group_by": "config.batch"})
        regroup = time.perf_counter() - began
    return {
        "runs": len(runs),
        "load_s": round(loaded, 3),
        "pushed_s": round(first, 3),
        "pushed_bytes": sum(received),
        "regroup_s": round(regroup, 4),
        "queries": len(received),
    }, frame


def raw(uri: str, runs: Runs, keep: bool) -> tuple[dict[str, Any], pl.DataFrame | None]:
    """Every point through the same driver (ADBC, one SELECT streamed as Arrow batches), then,
    with `keep`, the in-memory engine on them (at 100 M points the points are counted and
    dropped batch by batch: about 7 GB of Arrow would not fit beside the database)."""
    from adbc_driver_postgresql import dbapi

    began = time.perf_counter()
    received = points = 0
    batches: list[Any] = []
    with dbapi.connect(uri) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_uuid, key, step, timestamp, value, is_nan FROM metrics")
        for batch in cursor.fetch_record_batch():
            received += batch.nbytes
            points += batch.num_rows
            if keep:
                batches.append(batch)
    fetched = time.perf_counter() - began
    measured: dict[str, Any] = {
        "points": points,
        "raw_fetch_s": round(fetched, 3),
        "raw_bytes": received,
    }
    if not keep:
        return measured, None
    import pyarrow as pa

    frame = pl.from_arrow(pa.Table.from_batches(batches))
    assert isinstance(frame, pl.DataFrame)
    del batches
    history = frame.select(
        pl.col("run_uuid").cast(pl.Categorical).alias("run_id"),
        pl.col("key").cast(pl.Categorical).alias("metric"),
        pl.col("step").cast(pl.Int64),
        ((pl.col("timestamp") - START) / 1000).alias("time"),
        (pl.col("timestamp") * 1000).cast(pl.Datetime("us", "UTC")).alias("timestamp"),
        pl.col("value").cast(pl.Float64),
    )
    del frame
    began = time.perf_counter()
    aggregate = rg.aggregate(Runs(runs.runs, history, validate=False), **VIEW)
    measured["raw_aggregate_s"] = round(time.perf_counter() - began, 3)
    return measured, aggregate


def rest_subset(tracking_uri: str, runs: Runs, count: int) -> dict[str, Any]:
    """The `loss` history of `count` runs over MLflow's REST API (`metrics/get-history`, the
    call rungroup's REST reader makes, pages of 25,000): seconds and bytes, per point."""
    import urllib.parse
    import urllib.request

    began = time.perf_counter()
    received = points = 0
    for run_id in runs.runs["id"].cast(pl.String).to_list()[:count]:
        token = ""
        while True:
            query = {"run_id": run_id, "metric_key": "loss", "max_results": 25000}
            if token:
                query["page_token"] = token
            url = f"{tracking_uri}/api/2.0/mlflow/metrics/get-history?"
            with urllib.request.urlopen(url + urllib.parse.urlencode(query)) as answer:
                body = answer.read()
            received += len(body)
            page = json.loads(body)
            points += len(page.get("metrics", []))
            token = page.get("next_page_token") or ""
            if not token:
                break
    seconds = time.perf_counter() - began
    return {
        "rest_runs": count,
        "rest_points": points,
        "rest_s": round(seconds, 3),
        "rest_bytes": received,
        "rest_s_per_million_points": round(seconds / points * 1e6, 2),
        "rest_bytes_per_point": round(received / points, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--rest", type=int, default=0, help="runs read over REST (a subset)")
    parser.add_argument("--no-raw", action="store_true", help="skip fetching every raw point")
    parser.add_argument(
        "--keep-raw-below",
        type=int,
        default=20_000_000,
        help="compare with the in-memory engine on the raw points up to this many points",
    )
    parser.add_argument("--uri", help="an MLflow database already filled (skips creating)")
    parser.add_argument("--tracking-uri", help="its `mlflow server` (for --rest)")
    arguments = parser.parse_args()
    points = arguments.runs * arguments.steps
    with contextlib.ExitStack() as stack:
        if arguments.uri:
            uri, tracking = arguments.uri, arguments.tracking_uri
        else:
            server = stack.enter_context(
                running_mlflow_server(stack.enter_context(running_postgres()))
            )
            create(server, arguments.runs, arguments.steps)
            uri, tracking = server.uri(), server.tracking_uri
        result: dict[str, Any] = {"runs": arguments.runs, "steps": arguments.steps}
        # the pair timed back to back, each once, the push-down first (a cold-ish cache)
        measured, frame = pushed(uri, None)
        result.update(measured)
        if not arguments.no_raw:
            measured, expected = raw(uri, rg.load(uri), points <= arguments.keep_raw_below)
            result.update(measured)
            if expected is not None:
                result["max_line_difference"] = (frame["line"] - expected["line"]).abs().max()
            result["bytes_ratio"] = round(result["pushed_bytes"] / result["raw_bytes"], 5)
            result["speedup_vs_raw_fetch"] = round(result["raw_fetch_s"] / result["pushed_s"], 2)
        if arguments.rest and tracking:
            result.update(rest_subset(tracking, rg.load(uri), arguments.rest))
            result["rest_estimate_all_s"] = round(
                result["rest_s_per_million_points"] * result["points"] / 1e6, 1
            )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
