"""MLflow runs: the SQLite store, the `mlruns/` file store and a tracking server (REST).

All three are read without the `mlflow` package: SQLite with one query per table (never one
per run or metric), the file store as the text files it is, a server through its REST API with
the standard library. Other database URIs (postgresql://, mysql://, ...) go through mlflow's
own client, which needs ``pip install 'rungroup[mlflow]'``.

Mapping: experiment -> `project`, run name -> `name`, params -> `config.*` (numbers parsed),
latest metrics -> `summary.*`, metric history -> history, tags -> `tags` ("key=value"); the
`group` and `job_type` come from the tags named by `group_tag` / `job_type_tag`, and where a
run has no group tag, nested runs are grouped under their root parent run's name.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import sqlite3
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from rungroup.runs import Runs
from rungroup.sources.files import (
    MAX_TEXT_BYTES,
    read_bytes,
    read_text,
    subfolders,
    walk,
    yaml_value,
)
from rungroup.sources.runrecords import (
    RunRecord,
    assemble,
    progress,
    require,
    shown,
    utc_from_seconds,
    warn,
)

__all__ = ["is_mlflow", "load_mlflow"]

#: MLflow's run statuses -> rungroup's states (KILLED: stopped from outside, so "crashed").
STATES = {
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "crashed",
}
#: The file store writes the status as the number of MLflow's RunStatus enum.
FILE_STATES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
PARENT_TAG = "mlflow.parentRunId"
NAME_TAG = "mlflow.runName"
#: The SQL store writes +-inf as +-DBL_MAX; they are turned back into infinities.
DBL_MAX = sys.float_info.max

HISTORY_COLUMNS = {
    "run_id": pl.String,
    "metric": pl.String,
    "step": pl.Int64,
    "timestamp_ms": pl.Int64,
    "value": pl.Float64,
}


@dataclass
class _Raw:
    """What every MLflow backend reads, before the mapping to `Runs`."""

    source: str
    experiments: dict[str, str] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, dict[str, str]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    latest: dict[str, dict[str, float]] = field(default_factory=dict)
    history: list[pl.DataFrame] = field(default_factory=list)


# --- detection ------------------------------------------------------------------------------


def _sqlite_path(source: str | Path) -> Path | None:
    text = str(source)
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///") :])
    path = Path(text)
    if path.is_dir() and (path / "mlflow.db").is_file():
        return path / "mlflow.db"
    if path.is_file() and path.suffix in (".db", ".sqlite", ".sqlite3"):
        with path.open("rb") as handle:
            if handle.read(16) == b"SQLite format 3\x00":
                return path
    return None


def _is_file_store(path: Path) -> bool:
    if not path.is_dir():
        return False
    try:
        children = list(path.iterdir())
    except OSError:
        return False
    for child in children:
        if child.is_dir() and (child / "meta.yaml").is_file():
            try:
                meta = read_bytes(child / "meta.yaml", limit=MAX_TEXT_BYTES).decode(
                    "utf-8", "replace"
                )
            except OSError:
                continue
            if "experiment_id" in meta or "artifact_location" in meta:
                return True
    return False


def is_mlflow(source: Any) -> bool:
    """True for an MLflow SQLite file or URI, an `mlruns/` folder or an http(s) URI."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fspath(source)
    if text.startswith(("sqlite:///", "http://", "https://", "file://")):
        return True
    path = Path(text)
    try:
        if _sqlite_path(path) is not None:
            return _has_mlflow_tables(_sqlite_path(path))  # type: ignore[arg-type]
        return _is_file_store(path) or (
            (path / "mlruns").is_dir() and _is_file_store(path / "mlruns")
        )
    except OSError:
        return False


def _has_mlflow_tables(path: Path) -> bool:
    try:
        with _connect(path) as connection:
            names = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error:
        return False
    return {"runs", "metrics", "experiments"} <= names


def _connect(path: Path) -> sqlite3.Connection:
    # Read-only, and immutable when no other process holds the file: nothing is written,
    # not even a journal, into the user's folder.
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True)


# --- SQLite ---------------------------------------------------------------------------------


def _read_sqlite(path: Path, include_deleted: bool) -> _Raw:
    raw = _Raw(source=f"mlflow:sqlite:{path}")
    connection = _connect(path)
    try:
        cursor = connection.cursor()
        for experiment_id, name, stage in cursor.execute(
            "SELECT experiment_id, name, lifecycle_stage FROM experiments"
        ):
            if include_deleted or stage != "deleted":
                raw.experiments[str(experiment_id)] = name
        for row in cursor.execute(
            "SELECT run_uuid, name, status, start_time, end_time, lifecycle_stage, "
            "experiment_id FROM runs"
        ):
            run = run_row(row, raw.experiments, include_deleted)
            if run is not None:
                raw.runs.append(run)
        kept = {r["run_id"] for r in raw.runs}
        for run_id, key, value in cursor.execute("SELECT run_uuid, key, value FROM params"):
            if run_id in kept:
                raw.params.setdefault(run_id, {})[key] = value
        for run_id, key, value in cursor.execute("SELECT run_uuid, key, value FROM tags"):
            if run_id in kept:
                raw.tags.setdefault(run_id, {})[key] = value
        for run_id, key, value, is_nan in cursor.execute(
            "SELECT run_uuid, key, value, is_nan FROM latest_metrics"
        ):
            if run_id in kept:
                raw.latest.setdefault(run_id, {})[key] = _value(value, is_nan)
        history = _adbc_history(path)
        if history is None:
            history = _sqlite_history(cursor)
        present = set(history["run_id"].unique().cast(pl.String).to_list())
        if not present <= kept:  # metrics of deleted runs, or of runs of deleted experiments
            history = history.filter(pl.col("run_id").cast(pl.String).is_in(list(kept)))
        raw.history.append(history)
    except sqlite3.Error as error:
        raise ValueError(f"{path}: not a readable MLflow database ({error})") from error
    finally:
        connection.close()
    return raw


_METRICS_QUERY = "SELECT run_uuid, key, step, timestamp, value, is_nan FROM metrics"


def _adbc_history(path: Path) -> pl.DataFrame | None:
    """The metrics table through ADBC's SQLite driver (Arrow, no Python object per cell),
    when `adbc-driver-sqlite` is installed (`rungroup[mlflow]`); None otherwise."""
    try:
        from adbc_driver_sqlite import dbapi
    except ImportError:
        return None
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    try:
        with dbapi.connect(uri) as connection, connection.cursor() as cursor:
            cursor.execute(_METRICS_QUERY)
            table = pl.from_arrow(cursor.fetch_arrow_table())
    except Exception:  # any driver trouble: the standard library reads it instead
        return None
    if not isinstance(table, pl.DataFrame) or table.width != 6:
        return None
    table.columns = ["run_id", "metric", "step", "timestamp_ms", "value", "is_nan"]
    try:
        return _finish_history(
            table.with_columns(
                pl.col("run_id", "metric").cast(pl.String),
                pl.col("step", "timestamp_ms").cast(pl.Int64),
                pl.col("value").cast(pl.Float64),
                pl.col("is_nan").cast(pl.Int64) != 0,
            )
        )
    except pl.exceptions.PolarsError:
        return None


def metric_rows_frame(rows: list[Any]) -> pl.DataFrame:
    """Rows of `_METRICS_QUERY` (run id, key, step, timestamp, value, is_nan) as a frame."""
    run_ids, keys, steps, stamps, values, nans = zip(*rows, strict=True)
    return pl.DataFrame(
        {
            "run_id": pl.Series(run_ids, dtype=pl.String),
            "metric": pl.Series(keys, dtype=pl.String),
            "step": pl.Series(steps, dtype=pl.Int64),
            "timestamp_ms": pl.Series(stamps, dtype=pl.Int64),
            "value": pl.Series(values, dtype=pl.Float64),
            "is_nan": pl.Series(nans, dtype=pl.Int8) != 0,
        }
    )


def _sqlite_history(cursor: sqlite3.Cursor) -> pl.DataFrame:
    """The whole metrics table in one query, fetched in blocks into columns."""
    cursor.execute(_METRICS_QUERY)
    blocks: list[pl.DataFrame] = []
    while rows := cursor.fetchmany(500_000):
        blocks.append(metric_rows_frame(rows))
    if not blocks:
        return pl.DataFrame(schema=HISTORY_COLUMNS)
    return _finish_history(pl.concat(blocks))


def _finish_history(frame: pl.DataFrame) -> pl.DataFrame:
    """NaN from `is_nan`, infinities from +-DBL_MAX (how the SQL store writes them)."""
    return frame.with_columns(
        pl.when(pl.col("is_nan"))
        .then(float("nan"))
        .when(pl.col("value") >= DBL_MAX)
        .then(float("inf"))
        .when(pl.col("value") <= -DBL_MAX)
        .then(float("-inf"))
        .otherwise(pl.col("value"))
        .alias("value"),
        # Categorical once, here: the joins, group-bys and the final `Runs` all use it.
        pl.col("run_id", "metric").cast(pl.Categorical),
    ).drop("is_nan")


def _value(value: Any, is_nan: Any = False) -> float:
    if is_nan:
        return math.nan
    number = float(value)
    if number >= DBL_MAX:
        return math.inf
    if number <= -DBL_MAX:
        return -math.inf
    return number


# --- file store -----------------------------------------------------------------------------


def _meta(path: Path) -> dict[str, Any]:
    """A meta.yaml (bounded: `files.yaml_value`); raises `OSError` or `ValueError`."""
    loaded, repaired = yaml_value(read_text(path))
    if repaired:
        warn(path, "a lone surrogate (\\udXXX) in a name or text replaced by U+FFFD")
    if not isinstance(loaded, dict):
        raise ValueError("meta.yaml is not a mapping")
    return loaded


def _key_files(folder: Path) -> dict[str, Path]:
    """`metrics/`, `params/`, `tags/`: one file per key; a key with '/' is a subfolder."""
    if not folder.is_dir():
        return {}
    return {shown(p.relative_to(folder).as_posix()): p for p in walk(folder, lambda _: True)}


def _read_file_store(root: Path, include_deleted: bool, progress_bar: bool | None) -> _Raw:
    raw = _Raw(source=f"mlflow:file:{root}")
    run_folders: list[tuple[str, Path]] = []
    for exp_dir in subfolders(root):
        meta_path = exp_dir / "meta.yaml"
        if exp_dir.name.startswith(".") or not meta_path.is_file():
            continue
        try:
            meta = _meta(meta_path)
        except (OSError, ValueError) as error:
            warn(meta_path, f"experiment not read ({error})")
            continue
        if not include_deleted and meta.get("lifecycle_stage") == "deleted":
            continue
        experiment_id = str(meta.get("experiment_id", exp_dir.name))
        raw.experiments[experiment_id] = str(meta.get("name", exp_dir.name))
        for run_dir in subfolders(exp_dir):
            if (run_dir / "meta.yaml").is_file():
                run_folders.append((experiment_id, run_dir))
    metric_files: list[tuple[str, str, Path]] = []
    for experiment_id, run_dir in progress(
        run_folders, total=len(run_folders), desc="mlflow", enabled=progress_bar
    ):
        try:
            meta = _meta(run_dir / "meta.yaml")
        except (OSError, ValueError) as error:
            warn(run_dir / "meta.yaml", f"run not read ({error})")
            continue
        if "run_id" not in meta and "run_uuid" not in meta:
            continue  # e.g. a logged model's folder in MLflow 3
        if not include_deleted and meta.get("lifecycle_stage") == "deleted":
            continue
        run_id = str(meta.get("run_id") or meta.get("run_uuid"))
        status = meta.get("status")
        raw.runs.append(
            {
                "run_id": run_id,
                "name": meta.get("run_name"),
                "status": FILE_STATES.get(status, status) if isinstance(status, int) else status,
                "start_ms": meta.get("start_time"),
                "end_ms": meta.get("end_time"),
                "experiment_id": experiment_id,
            }
        )
        for kind, target in (("params", raw.params), ("tags", raw.tags)):
            for key, path in _key_files(run_dir / kind).items():
                try:
                    target.setdefault(run_id, {})[key] = read_text(path)
                except (OSError, UnicodeDecodeError) as error:
                    warn(path, f"{kind[:-1]} not read ({error})")
        metric_files.extend(
            (run_id, key, path) for key, path in _key_files(run_dir / "metrics").items()
        )
    # Summaries come from the history (the last value of every metric), as MLflow's own
    # latest_metrics would.
    raw.history = _metric_files(metric_files)
    return raw


def _metric_files(files: list[tuple[str, str, Path]]) -> list[pl.DataFrame]:
    """Every `metrics/<key>` file: in one parallel scan when all parse, else one by one."""
    if not files:
        return []
    try:
        stacked = pl.scan_csv(
            [str(path) for _, _, path in files],
            has_header=False,
            separator=" ",
            new_columns=["timestamp_ms", "value", "step"],
            schema_overrides={"timestamp_ms": pl.Int64, "value": pl.Float64, "step": pl.Int64},
            include_file_paths="path",
        ).collect()
        if (
            stacked.width == 4
            and not stacked.select(pl.any_horizontal(pl.all().is_null()).any()).item()
        ):
            names = pl.DataFrame(
                {
                    "path": [str(path) for _, _, path in files],
                    "run_id": [run_id for run_id, _, _ in files],
                    "metric": [key for _, key, _ in files],
                }
            )
            return [
                stacked.join(names, on="path", how="left").select(
                    "run_id", "metric", "step", "timestamp_ms", "value"
                )
            ]
    except (pl.exceptions.PolarsError, OSError, TypeError):  # TypeError: a non-UTF-8 path
        pass
    frames = [_metric_file(path, run_id, key) for run_id, key, path in files]
    return [f for f in frames if f is not None and f.height]


def _metric_file(path: Path, run_id: str, key: str) -> pl.DataFrame | None:
    """One `metrics/<key>` file: lines of 'timestamp value step'."""
    try:
        table = pl.read_csv(
            io.BytesIO(read_bytes(path)),
            separator=" ",
            has_header=False,
            new_columns=["timestamp_ms", "value", "step"],
            schema_overrides={"timestamp_ms": pl.String, "value": pl.String, "step": pl.String},
            truncate_ragged_lines=True,
            raise_if_empty=False,
        )
    except (OSError, pl.exceptions.PolarsError) as error:
        warn(path, f"metric not read ({error})")
        return None
    if table.width < 2:
        return None
    if "step" not in table.columns:
        table = table.with_columns(pl.lit("0").alias("step"))
    parsed = table.select(
        pl.lit(run_id, pl.String).alias("run_id"),
        pl.lit(key, pl.String).alias("metric"),
        pl.col("step").cast(pl.Int64, strict=False).fill_null(0),
        pl.col("timestamp_ms").cast(pl.Int64, strict=False),
        pl.col("value").cast(pl.Float64, strict=False),
    )
    bad = parsed.with_row_index("line", 1).filter(
        pl.col("timestamp_ms").is_null() | pl.col("value").is_null()
    )
    if bad.height:
        warn(path, f"line {bad['line'][0]} is not 'timestamp value step'; skipped")
        parsed = parsed.filter(pl.col("timestamp_ms").is_not_null() & pl.col("value").is_not_null())
    return parsed


# --- REST -----------------------------------------------------------------------------------


class _Rest:
    def __init__(self, base: str, timeout: float) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json"}
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif user:
            secret = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()

    def call(self, endpoint: str, body: dict[str, Any] | None = None, **query: Any) -> Any:
        url = f"{self.base}/api/2.0/mlflow/{endpoint}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", errors="replace")[:200]
            raise ConnectionError(f"{url}: HTTP {error.code} {detail}") from error
        except urllib.error.URLError as error:
            raise ConnectionError(f"{url}: {error.reason}") from error

    def pages(self, endpoint: str, body: dict[str, Any], key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = None
        while True:
            answer = self.call(endpoint, {**body, **({"page_token": token} if token else {})})
            items.extend(answer.get(key, []))
            token = answer.get("next_page_token")
            if not token:
                return items


def _read_rest(
    url: str, include_deleted: bool, progress_bar: bool | None, timeout: float, workers: int
) -> _Raw:
    rest = _Rest(url, timeout)
    raw = _Raw(source=f"mlflow:{url}")
    view = "ALL" if include_deleted else "ACTIVE_ONLY"
    for experiment in rest.pages(
        "experiments/search", {"max_results": 1000, "view_type": view}, "experiments"
    ):
        raw.experiments[str(experiment["experiment_id"])] = experiment.get("name", "")
    if not raw.experiments:
        return raw
    runs = rest.pages(
        "runs/search",
        {"experiment_ids": list(raw.experiments), "max_results": 1000, "run_view_type": view},
        "runs",
    )
    jobs: list[tuple[str, str]] = []
    for run in runs:
        info = run.get("info", {})
        data = run.get("data", {})
        run_id = info.get("run_id") or info.get("run_uuid")
        raw.runs.append(
            {
                "run_id": run_id,
                "name": info.get("run_name"),
                "status": info.get("status"),
                "start_ms": _int(info.get("start_time")),
                "end_ms": _int(info.get("end_time")),
                "experiment_id": str(info.get("experiment_id")),
            }
        )
        raw.params[run_id] = {p["key"]: p.get("value", "") for p in data.get("params", [])}
        raw.tags[run_id] = {t["key"]: t.get("value", "") for t in data.get("tags", [])}
        raw.latest[run_id] = {m["key"]: _value(m.get("value")) for m in data.get("metrics", [])}
        jobs.extend((run_id, m["key"]) for m in data.get("metrics", []))

    def history(job: tuple[str, str]) -> pl.DataFrame:
        run_id, key = job
        points: list[dict[str, Any]] = []
        token = None
        while True:
            query: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                query["page_token"] = token
            answer = rest.call("metrics/get-history", **query)
            points.extend(answer.get("metrics", []))
            token = answer.get("next_page_token")
            if not token:
                break
        return pl.DataFrame(
            {
                "run_id": [run_id] * len(points),
                "metric": [key] * len(points),
                "step": [_int(p.get("step")) or 0 for p in points],
                "timestamp_ms": [_int(p.get("timestamp")) for p in points],
                "value": [_value(p.get("value")) for p in points],
            },
            schema=HISTORY_COLUMNS,
        )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        raw.history = list(
            progress(pool.map(history, jobs), total=len(jobs), desc="mlflow", enabled=progress_bar)
        )
    return raw


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


# --- any other tracking URI through mlflow's client -------------------------------------------


def _read_client(uri: str, include_deleted: bool, progress_bar: bool | None) -> _Raw:
    mlflow = require("mlflow", "mlflow")
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    view = mlflow.entities.ViewType.ALL if include_deleted else mlflow.entities.ViewType.ACTIVE_ONLY
    raw = _Raw(source=f"mlflow:{uri}")
    for experiment in client.search_experiments(view_type=view):
        raw.experiments[str(experiment.experiment_id)] = experiment.name
    runs = client.search_runs(list(raw.experiments), run_view_type=view) if raw.experiments else []
    for run in progress(runs, total=len(runs), desc="mlflow", enabled=progress_bar):
        info, data = run.info, run.data
        raw.runs.append(
            {
                "run_id": info.run_id,
                "name": info.run_name,
                "status": info.status,
                "start_ms": info.start_time,
                "end_ms": info.end_time,
                "experiment_id": str(info.experiment_id),
            }
        )
        raw.params[info.run_id] = dict(data.params)
        raw.tags[info.run_id] = dict(data.tags)
        raw.latest[info.run_id] = {k: _value(v) for k, v in data.metrics.items()}
        for key in data.metrics:
            points = client.get_metric_history(info.run_id, key)
            raw.history.append(
                pl.DataFrame(
                    {
                        "run_id": [info.run_id] * len(points),
                        "metric": [key] * len(points),
                        "step": [p.step for p in points],
                        "timestamp_ms": [p.timestamp for p in points],
                        "value": [_value(p.value) for p in points],
                    },
                    schema=HISTORY_COLUMNS,
                )
            )
    return raw


# --- mapping --------------------------------------------------------------------------------


def _root_names(raw: _Raw) -> dict[str, str]:
    """Run id -> the name (or id) of its root parent run, for runs nested under another."""
    parents = {
        r: t[PARENT_TAG] for r, t in raw.tags.items() if t.get(PARENT_TAG) and t[PARENT_TAG] != r
    }
    names = {
        r["run_id"]: r["name"] or raw.tags.get(r["run_id"], {}).get(NAME_TAG) for r in raw.runs
    }
    roots: dict[str, str] = {}
    for run_id in parents:
        seen = {run_id}
        top = parents[run_id]
        while top in parents and parents[top] not in seen:
            seen.add(top)
            top = parents[top]
        roots[run_id] = names.get(top) or top
    return roots


def run_records(
    raw: _Raw, group_tag: str, job_type_tag: str, nested: bool
) -> tuple[list[RunRecord], dict[str, int | None]]:
    """One `RunRecord` per run of `raw`, and each run's start time (ms since 1970)."""
    roots = _root_names(raw) if nested else {}
    records: list[RunRecord] = []
    starts: dict[str, int | None] = {}
    for run in raw.runs:
        run_id = run["run_id"]
        tags = raw.tags.get(run_id, {})
        start = _int(run["start_ms"])
        end = _int(run["end_ms"])
        starts[run_id] = start
        status = str(run["status"]).upper() if run["status"] is not None else None
        user_tags = [
            f"{k}={v}" if v else k
            for k, v in sorted(tags.items())
            if not k.startswith("mlflow.") and k not in (group_tag, job_type_tag)
        ]
        records.append(
            RunRecord(
                id=run_id,
                source=raw.source,
                name=run["name"] or tags.get(NAME_TAG) or run_id,
                project=raw.experiments.get(run["experiment_id"]),
                group=tags.get(group_tag) or roots.get(run_id),
                job_type=tags.get(job_type_tag),
                state=STATES.get(status or ""),
                tags=user_tags,
                created_at=utc_from_seconds(start / 1000) if start is not None else None,
                runtime=(end - start) / 1000 if start is not None and end is not None else None,
                config=dict(raw.params.get(run_id, {})),
                summary=dict(raw.latest.get(run_id, {})),
            )
        )
    return records, starts


def timed_history(history: pl.LazyFrame, starts: dict[str, int | None]) -> pl.LazyFrame:
    """Raw metric rows (`HISTORY_COLUMNS`) -> history chunk columns: `time` from each run's
    start, `timestamp` from the milliseconds; rows of runs not in `starts` are left out."""
    start_frame = pl.DataFrame(
        {"run_id": list(starts), "start_ms": list(starts.values())},
        schema={"run_id": pl.Categorical, "start_ms": pl.Int64},
    )
    return history.join(start_frame.lazy(), on="run_id", how="inner", maintain_order="left").select(
        "run_id",
        "metric",
        "step",
        ((pl.col("timestamp_ms") - pl.col("start_ms")) / 1000).alias("time"),
        (pl.col("timestamp_ms") * 1000).cast(pl.Datetime("us", "UTC")).alias("timestamp"),
        "value",
    )


def _to_runs(raw: _Raw, group_tag: str, job_type_tag: str, nested: bool) -> Runs:
    records, starts = run_records(raw, group_tag, job_type_tag, nested)
    history = (
        pl.concat(raw.history, how="vertical_relaxed")
        if raw.history
        else pl.DataFrame(schema=HISTORY_COLUMNS)
    ).with_columns(pl.col("run_id", "metric").cast(pl.Categorical))
    return assemble(records, [timed_history(history.lazy(), starts).collect()], parse_strings=True)


def load_mlflow(
    source: str | Path = "mlflow.db",
    *,
    group_tag: str = "group",
    job_type_tag: str = "job_type",
    nested: bool = True,
    include_deleted: bool = False,
    experiments: list[str] | None = None,
    timeout: float = 30.0,
    workers: int = 8,
    progress_bar: bool | None = None,
) -> Runs:
    """Load MLflow runs from a SQLite store, an `mlruns/` folder or a tracking URI.

    `source`: ``mlflow.db`` / ``sqlite:///path/mlflow.db`` (MLflow 3's default store, read
    directly), a folder holding ``mlflow.db`` or ``mlruns/``, an ``mlruns/`` folder (the file
    store), ``http(s)://host:port`` (a tracking server, over REST: one request per run and
    metric, `workers` at a time), or any other MLflow tracking URI (through mlflow's client,
    ``pip install 'rungroup[mlflow]'``). `experiments` keeps only experiments with these names.
    Deleted runs and experiments are left out unless `include_deleted`.
    """
    text = os.fspath(source)
    reader: Callable[[], _Raw]
    if text.startswith(("http://", "https://")):
        reader = lambda: _read_rest(text, include_deleted, progress_bar, timeout, workers)  # noqa: E731
    elif (path := _sqlite_path(text)) is not None:
        if not path.is_file():
            raise FileNotFoundError(f"no such MLflow database: {path}")
        reader = lambda: _read_sqlite(path, include_deleted)  # noqa: E731
    else:
        folder = Path(text[len("file://") :] if text.startswith("file://") else text)
        if folder.is_dir() and not _is_file_store(folder) and _is_file_store(folder / "mlruns"):
            folder = folder / "mlruns"
        if folder.is_dir():
            reader = lambda: _read_file_store(folder, include_deleted, progress_bar)  # noqa: E731
        elif "://" in text:
            reader = lambda: _read_client(text, include_deleted, progress_bar)  # noqa: E731
        else:
            raise FileNotFoundError(f"no MLflow store at {text}")
    raw = reader()
    if experiments is not None:
        wanted = set(experiments)
        raw.experiments = {k: v for k, v in raw.experiments.items() if v in wanted}
        raw.runs = [r for r in raw.runs if r["experiment_id"] in raw.experiments]
    return _to_runs(raw, group_tag, job_type_tag, nested)


def run_row(
    row: tuple[Any, ...], experiments: Mapping[str, Any], include_deleted: bool
) -> dict[str, Any] | None:
    """A row of MLflow's `runs` table as a run record, or None when it is not wanted."""
    run_id, name, status, start, end, stage, experiment_id = row
    if not include_deleted and stage == "deleted":
        return None
    if str(experiment_id) not in experiments:
        return None
    return {
        "run_id": run_id,
        "name": name,
        "status": status,
        "start_ms": start,
        "end_ms": end,
        "experiment_id": str(experiment_id),
    }
