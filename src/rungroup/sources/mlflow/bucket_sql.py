"""The SQL of the bucket push-down (engine/provider.py) over MLflow's `metrics` table.

Two statements per view:

1. the x range of each metric over the runs asked for. For ``x="step"`` it is read through
   MLflow's index ``(run_uuid, key, step)``: two index probes per run and metric (the first
   and the last step), not a scan of the table;
2. one statement that sends, per run, metric and bucket of x, only what the engine needs for
   the `bucket` alignment: the sum and the count of the finite values and the count of all
   values (the engine takes the non-finite ones as their difference), in compact types
   (int4 run position, int2 metric position and bucket, float8 sum, int4 counts: 24 bytes a
   row, against about 70 a raw point). Either one scan of the table grouped by (run,
   metric, bucket), or (`per_run`, where an index leads with `run_uuid`) each run's rows
   read through that index and grouped by bucket alone: PostgreSQL then knows each group
   set is small, and the runs can be split over several connections, each a process of the
   server (about 3x faster on 2 cores at 10 M points: docs/performance.md).

The bucket of each x is exactly the one `numpy.histogram` (and `engine.align.bin_index`)
gives: the edges are computed here by numpy's own `linspace` and sent as bound float8
arrays, printed by `repr` so they parse back to the same doubles, and the database counts
the inner edges at or below x (``width_bucket(x, edges)``, a binary search) — numpy's "an x
on an edge goes to the bin the edge opens, the last bin is closed" with no arithmetic to
round differently.

Runs and metrics travel as their positions in the lists asked for, bound as JSON arrays.
"""

from __future__ import annotations

import numpy as np

from rungroup.engine.provider import BucketSums
from rungroup.sources.mlflow.records import MAX_MS, MIN_MS

__all__ = ["edges_literal", "range_query", "sums_query"]

#: A value MLflow's SQL store wrote for a finite number (NaN is `is_nan`, +-inf +-DBL_MAX,
#: bound as $3).
FINITE = "(NOT m.is_nan AND m.value > -$3 AND m.value < $3)"
#: MLflow keeps invalid timestamps; the in-memory readers drop their points (records.py).
VALID = f"m.timestamp BETWEEN {MIN_MS} AND {MAX_MS}"
#: The wanted runs and metrics ($1, $2: JSON arrays of text), numbered from 0 in their order.
_LISTED_IDS = (
    "(SELECT value AS id, ordinality - 1 AS r FROM "
    "jsonb_array_elements_text($1::jsonb) WITH ORDINALITY) ids"
)
_LISTED_KEYS = (
    "(SELECT value AS key, ordinality - 1 AS k FROM "
    "jsonb_array_elements_text($2::jsonb) WITH ORDINALITY) keys"
)
IDS_JOIN = f"JOIN {_LISTED_IDS} ON ids.id = m.run_uuid"
KEYS_JOIN = f"JOIN {_LISTED_KEYS} ON keys.key = m.key"
#: A run without a start time has no `time` in memory either.
TIME_JOIN = "JOIN runs r ON r.run_uuid = m.run_uuid AND r.start_time IS NOT NULL"


def _step_probe(direction: str) -> str:
    return (
        "CROSS JOIN LATERAL (SELECT m.step::float8 AS x FROM metrics m "
        f"WHERE m.run_uuid = ids.id AND m.key = keys.key AND {VALID} "
        f"ORDER BY m.step {direction} LIMIT 1) AS {'first' if direction == 'ASC' else 'last'}"
    )


def range_query(x: str, x_sql: str) -> str:
    """Per metric (`key`), the least and greatest x (`lo`, `hi`) over the runs asked for."""
    if x == "step":
        return (
            "SELECT keys.key AS key, min(first.x) AS lo, max(last.x) AS hi "
            "FROM jsonb_array_elements_text($1::jsonb) AS ids(id) "
            "CROSS JOIN jsonb_array_elements_text($2::jsonb) AS keys(key) "
            f"{_step_probe('ASC')} {_step_probe('DESC')} GROUP BY keys.key"
        )
    return (
        f"SELECT m.key AS key, min({x_sql}) AS lo, max({x_sql}) AS hi FROM metrics m "
        f"{TIME_JOIN} {IDS_JOIN} {KEYS_JOIN} WHERE {VALID} GROUP BY m.key"
    )


def edges_literal(edges: np.ndarray) -> str:
    """A float8[] literal of `edges` that parses back to the same doubles."""
    return "{" + ",".join(repr(float(e)) for e in edges) + "}"


def sums_query(
    x_sql: str,
    x: str,
    present: list[int],
    lo: np.ndarray,
    hi: np.ndarray,
    bins: int,
    *,
    per_run: bool = False,
) -> tuple[str, tuple[str, ...]]:
    """The per (run, metric, bucket) sums statement and its edge parameters ($4 on), for the
    metrics at `present` (those with points); $1 runs, $2 metrics, $3 DBL_MAX. `per_run`:
    each run's rows grouped by bucket in a `LATERAL` subquery (see the module's docs)."""
    with np.errstate(invalid="ignore"):
        edges = np.linspace(lo, hi, bins + 1, axis=-1)  # as engine.align.bin_index makes them
    cases: list[str] = []
    parameters: list[str] = []
    columns: list[str] = []
    for i in present:
        if hi[i] > lo[i]:
            parameters.append(edges_literal(edges[i, 1:-1]))
            columns.append(f"${3 + len(parameters)}::float8[] AS e{i}")
            cases.append(f"WHEN {i} THEN width_bucket({x_sql}, edges.e{i})")
    # a metric logged at one x only: a single bucket
    bucket = f"CASE keys.k {' '.join(cases)} ELSE 0 END" if cases else "0"
    bucket_type = "int2" if bins <= 32_767 else "int4"
    joined = f"metrics m {TIME_JOIN}" if x == "time" else "metrics m"
    # The edges parsed once: a text parameter cast to float8[] in the bucket expression
    # itself is parsed again for every row (array_in is not folded into a constant), which
    # made a scan of 1 M points take minutes; OFFSET 0 keeps the planner from inlining it.
    edges_join = f"CROSS JOIN (SELECT {', '.join(columns)} OFFSET 0) edges" if columns else ""
    sums = (
        f"({bucket})::{bucket_type} AS bucket, "
        f"(sum(m.value) FILTER (WHERE {FINITE}))::float8 AS sums, "
        f"(count(*) FILTER (WHERE {FINITE}))::int4 AS counts, count(*)::int4 AS total"
    )
    if per_run:
        query = (
            "SELECT ids.r::int4 AS run, keys.k::int2 AS metric, s.bucket, s.sums, s.counts, "
            f"s.total FROM {_LISTED_IDS} CROSS JOIN {_LISTED_KEYS} {edges_join} "
            f"CROSS JOIN LATERAL (SELECT {sums} FROM {joined} WHERE m.run_uuid = ids.id "
            f"AND m.key = keys.key AND {VALID} GROUP BY 1) s"
        )
    else:
        query = (
            f"SELECT ids.r::int4 AS run, keys.k::int2 AS metric, {sums} "
            f"FROM {joined} {IDS_JOIN} {KEYS_JOIN} {edges_join} WHERE {VALID} GROUP BY 1, 2, 3"
        )
    return query, tuple(parameters)


def empty_sums(lo: np.ndarray, hi: np.ndarray, bins: int, received: int) -> BucketSums:
    """The answer when no metric asked for has a point among the runs asked for."""
    none = np.zeros(0, dtype=np.int64)
    return BucketSums(
        run=none,
        metric=none,
        bucket=none,
        sums=np.zeros(0),
        counts=none,
        dropped=none,
        lo=lo,
        width=(hi - lo) / bins,
        received=received,
    )
