"""What every MLflow backend reads (`_Raw`) and its mapping to `Runs`.

Mapping: experiment -> `project`, run name -> `name`, params -> `config.*` (numbers parsed),
latest metrics -> `summary.*`, metric history -> history, tags -> `tags` ("key=value"); the
`group` and `job_type` come from the tags named by `group_tag` / `job_type_tag`, and where a
run has no group tag, nested runs are grouped under their root parent run's name.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from rungroup.runs import Runs, warn_mixed_types
from rungroup.sources.runrecords import (
    RunRecord,
    assemble,
    parse_number,
    utc_from_seconds,
    warn,
)

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
_INTEGER = re.compile(r"[+-]?\d+")
#: The columns of MLflow's `runs` table that `run_row` reads.
RUN_COLUMNS = "run_uuid, name, status, start_time, end_time, lifecycle_stage, experiment_id"
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
    #: run id -> where it was read (a file, a row), to name both when a run id repeats
    places: dict[str, str] = field(default_factory=dict)


# --- what MLflow writes ---------------------------------------------------------------------

#: Milliseconds since 1970 that are a time: the years 1 to 9999 (what `datetime` holds).
#: A start time of 2**62 ms is not one: it is refused instead of wrapping around to 1970.
MIN_MS = -62_135_596_800_000
MAX_MS = 253_402_300_799_999


def _integer(value: Any) -> int | None:
    """An int64 as MLflow writes one (an int, or its decimal text), else None: 1.5, '1.5',
    'abc', True and numbers beyond int64 are not steps or times."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def point_problem(step: Any, timestamp: Any, value: Any) -> str | None:
    """Why a metric point is not one MLflow writes (an integer step, a timestamp in ms within
    `MIN_MS`..`MAX_MS`, a numeric value), or None when it is one. Such points are skipped."""
    stamp = _integer(timestamp)
    if stamp is None or not MIN_MS <= stamp <= MAX_MS:
        return f"timestamp {_shown(timestamp)} is not a time in milliseconds since 1970"
    if _number(value) is None:
        return f"value {_shown(value)} is not a number"
    if _integer(step) is None:
        return f"step {_shown(step)} is not an integer"
    return None


def _shown(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def add_run(raw: _Raw, run: dict[str, Any], where: str) -> bool:
    """Append `run` to `raw.runs` after checking it; False (with a warning naming `where`)
    when it is skipped: no run id, or a run id already read elsewhere (a run folder copied
    into a second experiment, a duplicated row). Start and end times that are not times and
    unknown statuses are left empty, with a warning."""
    run_id = run.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        warn(where, "a run without a run id; skipped")
        return False
    if run_id in raw.places:
        warn(where, f"run {run_id} was already read from {raw.places[run_id]}; this copy skipped")
        return False
    for field_name, label in (("start_ms", "start_time"), ("end_ms", "end_time")):
        given = run.get(field_name)
        stamp = None if given is None else _integer(given)
        if given is not None and (stamp is None or not MIN_MS <= stamp <= MAX_MS):
            warn(
                where,
                f"run {run_id}: {label} {_shown(given)} is not a time in milliseconds since "
                "1970; left empty",
            )
            stamp = None
        run[field_name] = stamp
    status = run.get("status")
    if status is not None and str(status).upper() not in STATES:
        warn(
            where,
            f"run {run_id}: unknown status {_shown(status)} (valid: {', '.join(STATES)}); "
            "state left empty",
        )
        run["status"] = None
    raw.places[run_id] = where
    raw.runs.append(run)
    return True


def _value(value: Any, is_nan: Any = False) -> float:
    if is_nan:
        return math.nan
    number = float(value)
    if number >= DBL_MAX:
        return math.inf
    if number <= -DBL_MAX:
        return -math.inf
    return number


def points_frame(
    run_id: str, key: str, points: list[tuple[Any, Any, Any]], where: str
) -> pl.DataFrame:
    """(step, timestamp, value) points of one metric as `HISTORY_COLUMNS` rows; points that
    `point_problem` refuses are skipped with one warning naming `where` and the first."""
    kept: list[tuple[int, int, float]] = []
    problems: list[tuple[int, str]] = []
    for index, (step, stamp, value) in enumerate(points):
        why = point_problem(step, stamp, value)
        if why is None:
            kept.append((int(step), int(stamp), _value(value)))
        else:
            problems.append((index, why))
    if problems:
        index, why = problems[0]
        warn(where, f"point {index}: {why}; {len(problems)} such point(s) skipped")
    return pl.DataFrame(
        {
            "run_id": [run_id] * len(kept),
            "metric": [key] * len(kept),
            "step": [p[0] for p in kept],
            "timestamp_ms": [p[1] for p in kept],
            "value": [p[2] for p in kept],
        },
        schema=HISTORY_COLUMNS,
    )


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


def _warn_mixed_params(raw: _Raw) -> None:
    """A param that is a number in some runs and text in others becomes a text column: warn
    as every other source does (`warn_mixed_types`), naming the column."""
    keys = sorted({k for run in raw.runs for k in raw.params.get(run["run_id"], {})})
    for key in keys:
        given = [raw.params.get(run["run_id"], {}).get(key) for run in raw.runs]
        values = [parse_number(v) if v.strip() else v for v in given if isinstance(v, str)]
        if len({isinstance(v, str) for v in values}) > 1:
            warn_mixed_types(f"config.{key}", values)


def run_records(
    raw: _Raw, group_tag: str, job_type_tag: str, nested: bool
) -> tuple[list[RunRecord], dict[str, int | None]]:
    """One `RunRecord` per run of `raw`, and each run's start time (ms since 1970)."""
    _warn_mixed_params(raw)
    roots = _root_names(raw) if nested else {}
    records: list[RunRecord] = []
    starts: dict[str, int | None] = {}
    for run in raw.runs:
        run_id = run["run_id"]
        tags = raw.tags.get(run_id, {})
        start: int | None = run["start_ms"]  # checked by `add_run`
        end: int | None = run["end_ms"]
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
