"""The `Runs` model: every source ends here, and nothing downstream knows where runs came from.

`Runs.runs` holds one row per run, `Runs.history` the logged points in long format. Both
follow the schemas of docs/architecture.md; `Runs(...)` checks and coerces its frames so that
a source can never hand the engine something of another shape.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from rungroup.engine.provider import HistoryProvider

RUN_STATES = ("running", "finished", "failed", "crashed")

#: The fixed leading columns of `Runs.runs`; `config.<key>` and `summary.<key>` follow.
#: `id` is categorical like the history's `run_id`, so the join users write,
#: `history.join(runs, left_on="run_id", right_on="id")`, works as loaded.
RUN_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Categorical(),
    "name": pl.String(),
    "project": pl.String(),
    "group": pl.String(),
    "job_type": pl.String(),
    "state": pl.String(),
    "tags": pl.List(pl.String()),
    "created_at": pl.Datetime("us", "UTC"),
    "runtime": pl.Float64(),
    "source": pl.String(),
}

#: `Runs.history`: one row per logged point. `run_id` and `metric` are categorical because
#: they repeat millions of times; a categorical costs 4 bytes a row instead of a string.
HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.Categorical(),
    "metric": pl.Categorical(),
    "step": pl.Int64(),
    "time": pl.Float64(),
    "timestamp": pl.Datetime("us", "UTC"),
    "value": pl.Float64(),
}

CONFIG_PREFIX = "config."
SUMMARY_PREFIX = "summary."

#: Run columns that are always offered for grouping (besides config.* and summary.*).
GROUPABLE_BASE_COLUMNS = ("project", "group", "job_type", "name", "state", "tags")


class SchemaError(ValueError):
    """A frame handed to `Runs` does not follow the schema in docs/architecture.md."""


def empty_runs_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=RUN_SCHEMA)


def empty_history_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=HISTORY_SCHEMA)


def _coerce_runs(frame: pl.DataFrame) -> pl.DataFrame:
    missing = [name for name in ("id",) if name not in frame.columns]
    if missing:
        raise SchemaError(f"runs frame has no {missing[0]!r} column; columns: {frame.columns}")
    unknown = [
        c
        for c in frame.columns
        if c not in RUN_SCHEMA and not c.startswith((CONFIG_PREFIX, SUMMARY_PREFIX))
    ]
    if unknown:
        raise SchemaError(
            f"runs frame has unknown column(s) {unknown}; valid: {list(RUN_SCHEMA)} "
            f"and columns named '{CONFIG_PREFIX}<key>' or '{SUMMARY_PREFIX}<key>'"
        )
    columns: list[pl.Expr] = []
    for name, dtype in RUN_SCHEMA.items():
        if name in frame.columns:
            source = pl.col(name)
            if dtype == pl.Categorical():
                source = source.cast(pl.String)
            try:
                columns.append(source.cast(dtype, strict=True))
            except Exception as error:  # pragma: no cover - cast errors surface on collect
                raise SchemaError(f"runs column {name!r} cannot be {dtype}: {error}") from error
        elif name == "tags":
            columns.append(pl.lit([], dtype=dtype).alias(name))
        elif name == "name":
            columns.append(pl.col("id").cast(pl.String).alias(name))
        else:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
    extra = sorted(c for c in frame.columns if c not in RUN_SCHEMA)
    config = [c for c in extra if c.startswith(CONFIG_PREFIX)]
    summary = [c for c in extra if c.startswith(SUMMARY_PREFIX)]
    try:
        result = frame.select(*columns, *config, *summary)
    except pl.exceptions.PolarsError as error:
        raise SchemaError(f"runs frame does not fit the runs schema: {error}") from error
    if result["id"].null_count():
        raise SchemaError("runs frame has a null id")
    if result["id"].n_unique() != result.height:
        duplicated = result.filter(pl.col("id").is_duplicated())["id"].unique().sort()
        raise SchemaError(f"run ids must be unique; repeated: {duplicated.head(5).to_list()}")
    bad_states = result.filter(pl.col("state").is_not_null() & ~pl.col("state").is_in(RUN_STATES))[
        "state"
    ]
    if bad_states.len():
        raise SchemaError(
            f"unknown run state {bad_states[0]!r}; valid states: {', '.join(RUN_STATES)}"
        )
    return result


def _coerce_history(history: pl.LazyFrame) -> pl.LazyFrame:
    schema = history.collect_schema()
    unknown = [c for c in schema.names() if c not in HISTORY_SCHEMA]
    if unknown:
        raise SchemaError(f"history has unknown column(s) {unknown}; valid: {list(HISTORY_SCHEMA)}")
    for required in ("run_id", "metric", "value"):
        if required not in schema:
            raise SchemaError(f"history has no {required!r} column; columns: {schema.names()}")
    if all(schema.get(n) == d for n, d in HISTORY_SCHEMA.items()) and list(schema) == list(
        HISTORY_SCHEMA
    ):
        return history
    columns = []
    for name, dtype in HISTORY_SCHEMA.items():
        if name in schema:
            source = pl.col(name)
            if dtype == pl.Categorical() and schema[name] != pl.Categorical():
                source = source.cast(pl.String)
            columns.append(source.cast(dtype, strict=True))
        elif name == "step":
            # A source without steps numbers each run's points of a metric in logged order.
            columns.append(
                pl.int_range(pl.len()).over("run_id", "metric").cast(pl.Int64).alias(name)
            )
        else:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
    return history.select(columns)


class Runs:
    """A set of runs: `runs` (one row per run) and `history` (long, lazy).

    Build one with `rungroup.load(...)`; the constructor is for sources and tests, and checks
    both frames against the schemas (`RUN_SCHEMA`, `HISTORY_SCHEMA`).
    """

    # __weakref__: the engine keeps matrices prepared from a Runs only while it lives
    __slots__ = ("__weakref__", "_history", "_metrics", "_provider", "_runs")

    def __init__(
        self,
        runs: pl.DataFrame | None = None,
        history: pl.LazyFrame | pl.DataFrame | None = None,
        *,
        validate: bool = True,
        provider: HistoryProvider | None = None,
    ) -> None:
        runs = empty_runs_frame() if runs is None else runs
        if history is None:
            history = empty_history_frame()
        lazy = history.lazy() if isinstance(history, pl.DataFrame) else history
        if validate:
            runs = _coerce_runs(runs)
            lazy = _coerce_history(lazy)
        self._runs = runs
        self._history = lazy
        self._metrics: tuple[str, ...] | None = None
        self._provider = provider

    @property
    def runs(self) -> pl.DataFrame:
        """One row per run (schema: docs/architecture.md)."""
        return self._runs

    @property
    def history(self) -> pl.LazyFrame:
        """Every logged point, long format (schema: docs/architecture.md)."""
        return self._history

    @property
    def provider(self) -> HistoryProvider | None:
        """Where the engine sends per-run reductions of the history instead of reading it
        (a database-backed source's; None: the history is read; engine/provider.py)."""
        return self._provider

    @property
    def ids(self) -> list[str]:
        return self._runs["id"].to_list()

    @property
    def metrics(self) -> list[str]:
        """Sorted names of every metric that has at least one point."""
        if self._metrics is None:
            names = (
                # unique before the cast: categorical codes are cheap, strings per point are not
                self._history.select(pl.col("metric").unique().cast(pl.String))
                .collect()
                .to_series()
                .drop_nulls()
                .to_list()
            )
            self._metrics = tuple(sorted(names))
        return list(self._metrics)

    @property
    def columns(self) -> list[str]:
        """Run columns that make sense to group by: base columns, then config.*, summary.*."""
        extra = [c for c in self._runs.columns if c.startswith((CONFIG_PREFIX, SUMMARY_PREFIX))]
        return [*GROUPABLE_BASE_COLUMNS, *extra]

    @property
    def config_columns(self) -> list[str]:
        return [c for c in self._runs.columns if c.startswith(CONFIG_PREFIX)]

    @property
    def summary_columns(self) -> list[str]:
        return [c for c in self._runs.columns if c.startswith(SUMMARY_PREFIX)]

    def filter(self, *predicates: pl.Expr | Any, **constraints: Any) -> Runs:
        """Keep the runs matching `predicates` (Polars expressions over `runs`), history too.

        Keyword constraints compare a column to a value: ``runs.filter(group="cv-1")``; use
        ``**{"config.lr": 0.1}`` for dotted names.
        """
        kept = (
            self._runs.filter(*predicates, **constraints)
            if (predicates or constraints)
            else self._runs
        )
        return self._with_runs(kept)

    def select_ids(self, ids: Iterable[str]) -> Runs:
        """Keep only the runs whose id is in `ids` (order of `runs` is preserved)."""
        return self._with_runs(self._runs.filter(pl.col("id").is_in(list(ids))))

    def _with_runs(self, kept: pl.DataFrame) -> Runs:
        if kept.height == self._runs.height:
            return self
        ids = kept["id"]
        # on the categorical itself: casting every point to a string costs ~8x more
        history = self._history.filter(pl.col("run_id").is_in(ids.implode()))
        return Runs(kept, history, validate=False, provider=self._provider)

    def collect(self) -> Runs:
        """Materialise the history in memory (useful before many aggregations)."""
        return Runs(self._runs, self._history.collect().lazy(), validate=False)

    def __len__(self) -> int:
        return self._runs.height

    def __repr__(self) -> str:
        groups = self._runs["group"].n_unique() if self._runs.height else 0
        return (
            f"Runs({self._runs.height} runs, {groups} groups, "
            f"{len(self.metrics)} metrics: {', '.join(self.metrics[:6])}"
            f"{', ...' if len(self.metrics) > 6 else ''})"
        )


def concat(parts: Iterable[Runs]) -> Runs:
    """Join runs from several sources into one `Runs`; ids must stay unique."""
    parts = list(parts)
    if not parts:
        return Runs()
    runs = pl.concat([p.runs for p in parts], how="diagonal_relaxed")
    history = pl.concat([p.history for p in parts], how="vertical")
    return Runs(runs, history)


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts with '.' (W&B's and MLflow's convention for nested config)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class LoadWarning(UserWarning):
    """Something in a source could not be read; the message names the file (and line)."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "json"


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def unify_column(name: str, values: list[Any]) -> pl.Series:
    """One column from per-run values of possibly different types.

    bool, int and float columns keep their type (int and float together become float);
    lists and dicts become their JSON text; any other mix becomes text, with a warning that
    names the column, because grouping may then split `1` and `"1"` apart.
    """
    kinds = {_kind(v) for v in values if v is not None}
    if kinds == {"bool"}:
        return pl.Series(name, values, dtype=pl.Boolean)
    if kinds == {"int"}:
        if all(-(2**63) <= v < 2**63 for v in values if v is not None):
            return pl.Series(name, values, dtype=pl.Int64)
        return pl.Series(name, [None if v is None else float(v) for v in values], pl.Float64)
    if kinds and kinds <= {"int", "float"}:
        return pl.Series(name, [None if v is None else float(v) for v in values], pl.Float64)
    warn_mixed_types(name, values)
    return pl.Series(name, [_as_text(v) for v in values], dtype=pl.String)


def warn_mixed_types(name: str, values: list[Any]) -> None:
    """Warn, naming the column, when its per-run values that become text were of different
    kinds (grouping may then split `1` and `"1"` apart). Every source's config and summary
    columns go through here: the store's (`unify_column`) and the loaders'
    (`sources/runrecords.py`)."""
    kinds = {_kind(v) for v in values if v is not None}
    if len(kinds - {"json"}) > 1:
        warnings.warn(
            f"column {name!r} holds values of different types ({', '.join(sorted(kinds))}) "
            "in different runs; loaded as text",
            LoadWarning,
            stacklevel=4,
        )


def build_runs_frame(records: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """The `runs` frame from one dict per run.

    Each record has the base fields of `RUN_SCHEMA` (missing ones become null) plus optional
    `config` and `summary` dicts, which are flattened with '.' into `config.<key>` and
    `summary.<key>` columns of one common type each (see `unify_column`).
    """
    base = {
        name: pl.Series(name, [r.get(name) for r in records], dtype=dtype, strict=False)
        for name, dtype in RUN_SCHEMA.items()
        if name not in ("tags",)
    }
    base["tags"] = pl.Series(
        "tags", [list(r.get("tags") or []) for r in records], dtype=pl.List(pl.String)
    )
    columns = [base[name] for name in RUN_SCHEMA]
    for prefix, key in ((CONFIG_PREFIX, "config"), (SUMMARY_PREFIX, "summary")):
        flat = [flatten(r.get(key) or {}) for r in records]
        names = sorted({k for entry in flat for k in entry})
        columns.extend(
            unify_column(f"{prefix}{k}", [entry.get(k) for entry in flat]) for k in names
        )
    if not records:
        return empty_runs_frame()
    return pl.DataFrame(columns)
