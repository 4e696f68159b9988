"""Shared plumbing of the loaders: run records -> `Runs`, path templates, warnings, progress.

Every loader reads its format into a list of `RunRecord` (one per run) and a list of history
chunks (small Polars frames, one or a few per run), then calls `assemble()`. That is the one
place where config values get their column types, where a summary is derived from the history
when a format has none, and where the frames are checked against the `Runs` schemas.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl

from rungroup.runs import (
    CONFIG_PREFIX,
    HISTORY_SCHEMA,
    SUMMARY_PREFIX,
    LoadWarning,
    Runs,
    flatten,
    warn_mixed_types,
)

T = TypeVar("T")

#: Template fields that fill a base column of `Runs.runs` instead of `config.<field>`.
BASE_FIELDS = ("project", "group", "job_type", "name")

#: History columns of a chunk before `run_id` and `metric` become categorical.
CHUNK_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "metric": pl.String(),
    "step": pl.Int64(),
    "time": pl.Float64(),
    "timestamp": pl.Datetime("us", "UTC"),
    "value": pl.Float64(),
}

#: Every source shows a progress bar when it reads more runs (or files) than this, unless
#: `progress_bar=` says otherwise.
PROGRESS_THRESHOLD = 64


def warn(path: str | Path, message: str) -> None:
    """Warn about one unreadable file (or record of it), naming the file first."""
    warnings.warn(f"{shown(path)}: {message}", LoadWarning, stacklevel=3)


def shown(path: str | os.PathLike[str]) -> str:
    """A path or name as text: bytes that are not UTF-8 (kept by Python's `surrogateescape`)
    as ``\\xNN``, so the text can go into a frame and still tells the bytes apart."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


class MissingExtraError(ImportError):
    """A source needs an optional package; the message names the extra to install."""


def require(module: str, extra: str) -> Any:
    """Import `module` or raise `MissingExtraError` naming `pip install 'rungroup[extra]'`."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"this source needs the {module!r} package: pip install 'rungroup[{extra}]'"
        ) from error


def progress(
    items: Iterable[T], *, total: int, desc: str, enabled: bool | None = None
) -> Iterator[T]:
    """Iterate `items` with a tqdm.auto bar when the source is large (or `enabled=True`)."""
    show = total > PROGRESS_THRESHOLD if enabled is None else enabled
    if not show:
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, total=total, desc=desc, unit="run", leave=False)


@dataclass
class RunRecord:
    """What a loader knows about one run before it becomes a row of `Runs.runs`."""

    id: str
    source: str
    name: str | None = None
    project: str | None = None
    group: str | None = None
    job_type: str | None = None
    state: str | None = None
    tags: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    runtime: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None  # besides the last value of every metric


def chunk(
    run_id: str,
    metric: str | Sequence[str] | pl.Series,
    step: Sequence[int] | pl.Series | None,
    value: Sequence[float] | pl.Series,
    *,
    time: Sequence[float | None] | pl.Series | None = None,
    timestamp_us: Sequence[int | None] | pl.Series | None = None,
) -> pl.DataFrame:
    """One history chunk in `CHUNK_SCHEMA` (timestamps as integer microseconds since 1970)."""
    n = len(value)
    metrics = pl.Series("metric", [metric] * n if isinstance(metric, str) else metric, pl.String)
    steps = (
        pl.int_range(n, eager=True, dtype=pl.Int64).alias("step")
        if step is None
        else pl.Series("step", step, pl.Int64)
    )
    times = pl.Series("time", [None] * n if time is None else time, pl.Float64)
    stamps = pl.Series(
        "timestamp", [None] * n if timestamp_us is None else timestamp_us, pl.Int64
    ).cast(pl.Datetime("us", "UTC"))
    return pl.DataFrame(
        [
            pl.Series("run_id", [run_id] * n, pl.String),
            metrics,
            steps,
            times,
            stamps,
            pl.Series("value", value, pl.Float64, strict=False),
        ]
    )


#: Wall-clock seconds since 1970 that are a time: the years 1 to 9999 (what `datetime` holds).
#: Anything else (NaN, infinities, a column of milliseconds) is not taken for a time.
MIN_SECONDS = -62_135_596_800.0
MAX_SECONDS = 253_402_300_799.0
#: Steps must fit the history's Int64 column.
MAX_STEP = 2**63 - 1


def is_time(seconds: float | None) -> bool:
    """True for wall-clock seconds within `MIN_SECONDS`..`MAX_SECONDS` (NaN is not)."""
    return seconds is not None and MIN_SECONDS <= seconds <= MAX_SECONDS


def utc_from_seconds(seconds: float | None) -> datetime | None:
    """The UTC time of `seconds` since 1970, or None when it is not a time (`is_time`)."""
    if seconds is None or not is_time(seconds):
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


# --- values ---------------------------------------------------------------------------------

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?|[+-]?(inf|nan|infinity)", re.I)


def parse_number(text: str) -> int | float | str:
    """'3' -> 3, '0.1' -> 0.1, '1e-3' -> 0.001, anything else unchanged."""
    stripped = text.strip()
    if _INT.fullmatch(stripped):
        return int(stripped)
    if _FLOAT.fullmatch(stripped):
        return float(stripped)
    return text


def _column(name: str, values: list[Any], parse_strings: bool) -> pl.Series:
    """One config/summary column with a single honest type (no sentinel strings)."""
    present = [v for v in values if v is not None]
    if parse_strings:
        parsed: dict[int, Any] = {}
        ok = True
        for i, v in enumerate(values):
            if isinstance(v, str):
                p = parse_number(v) if v.strip() else v
                if isinstance(p, str):
                    ok = False
                    break
                parsed[i] = p
        if ok and parsed:
            values = [parsed.get(i, v) for i, v in enumerate(values)]
            present = [v for v in values if v is not None]
    if not present:
        return pl.Series(name, values, pl.Null)
    if all(isinstance(v, bool) for v in present):
        return pl.Series(name, values, pl.Boolean)
    if all(
        isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63 for v in present
    ):
        return pl.Series(name, values, pl.Int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pl.Series(name, [None if v is None else float(v) for v in values], pl.Float64)
    if all(isinstance(v, datetime) for v in present):
        return pl.Series(name, values)
    warn_mixed_types(name, values)
    return pl.Series(name, [None if v is None else _text(v) for v in values], pl.String)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


# --- templates ------------------------------------------------------------------------------

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


@dataclass(frozen=True)
class Template:
    """A path template such as ``logs/{algo}/{env}/seed_{seed}``.

    `root` is the folder before the first field or wildcard, `glob` the pattern below it, and
    `match()` turns a path (relative to `root`) into the field values, numbers parsed.
    """

    root: Path
    glob: str
    regex: re.Pattern[str]
    fields: tuple[str, ...]

    @classmethod
    def parse(cls, template: str | Path) -> Template:
        text = str(template).replace("\\", "/")
        parts = text.split("/")
        fixed: list[str] = []
        for part in parts:
            if "{" in part or "*" in part or "?" in part or "[" in part:
                break
            fixed.append(part)
        rest = parts[len(fixed) :]
        if not fixed:
            root = Path()
        elif fixed == [""]:
            root = Path("/")
        else:
            root = Path("/".join(fixed) or "/")
        pattern = "/".join(rest)
        fields: list[str] = []
        regex_parts: list[str] = []
        glob_parts: list[str] = []
        pos = 0
        for m in _FIELD.finditer(pattern):
            literal = pattern[pos : m.start()]
            regex_parts.append(_glob_to_regex(literal))
            glob_parts.append(literal)
            name = m.group(1)
            group = name.replace(".", "__dot__")
            if name in fields:
                regex_parts.append(f"(?P={group})")
            else:
                fields.append(name)
                regex_parts.append(f"(?P<{group}>[^/]+?)")
            glob_parts.append("*")
            pos = m.end()
        regex_parts.append(_glob_to_regex(pattern[pos:]))
        glob_parts.append(pattern[pos:])
        return cls(
            root=root,
            glob="".join(glob_parts),
            regex=re.compile("".join(regex_parts)),
            fields=tuple(fields),
        )

    @property
    def has_pattern(self) -> bool:
        return bool(self.glob)

    def match(self, relative: str) -> dict[str, int | float | str] | None:
        m = self.regex.fullmatch(relative.replace("\\", "/"))
        if m is None:
            return None
        return {name: parse_number(m.group(name.replace(".", "__dot__"))) for name in self.fields}

    def paths(self) -> list[Path]:
        """Every existing path below `root` that matches (sorted, so loading is stable)."""
        return [path for path, _ in self.matches()]

    def matches(self) -> list[tuple[Path, dict[str, int | float | str]]]:
        """`paths()` with the fields of each (`match`), each path matched once."""
        if not self.glob:
            return [(self.root, self.match(".") or {})] if self.root.exists() else []
        found = []
        for path in self.root.glob(self.glob):
            fields = self.match(path.relative_to(self.root).as_posix())
            if fields is not None:
                found.append((path, fields))
        return sorted(found, key=lambda pair: pair[0])


def _glob_to_regex(literal: str) -> str:
    out = []
    i = 0
    while i < len(literal):
        c = literal[i]
        if literal.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if literal.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def apply_fields(record: RunRecord, values: Mapping[str, Any]) -> None:
    """Template fields -> base columns (`group`, `job_type`, `name`, `project`) or config."""
    for key, value in values.items():
        if key in BASE_FIELDS:
            setattr(record, key, str(value))
        elif not key.startswith("_"):
            record.config[key] = value


def format_option(option: str | None, values: Mapping[str, Any]) -> str | None:
    """A `group=`/`job_type=`/`name=` option: a field name, or a format string of fields."""
    if option is None:
        return None
    if "{" in option:
        try:
            return option.format(**values)
        except (KeyError, IndexError, ValueError):
            return None
    value = values.get(option)
    return None if value is None else str(value)


# --- assembly -------------------------------------------------------------------------------


def _history(chunks: list[pl.DataFrame]) -> pl.DataFrame:
    if not chunks:
        return pl.DataFrame(schema=CHUNK_SCHEMA)
    if len(chunks) == 1:
        return chunks[0].select(list(CHUNK_SCHEMA))
    return pl.concat([c.select(list(CHUNK_SCHEMA)) for c in chunks], how="vertical", rechunk=True)


def last_values(history: pl.DataFrame) -> pl.DataFrame:
    """Per run: the last logged value of every metric (by step, then logged order)."""
    if history.height == 0:
        return pl.DataFrame({"id": []}, schema={"id": pl.String})
    last = _last_rows(history)
    if last is None:
        last = _last_by_group(history)
    last = last.with_columns(pl.col("run_id", "metric").cast(pl.String))
    wide = last.pivot(on="metric", index="run_id", values="value", sort_columns=True)
    return wide.rename(
        {c: f"{SUMMARY_PREFIX}{c}" for c in wide.columns if c != "run_id"} | {"run_id": "id"}
    )


def _last_rows(history: pl.DataFrame) -> pl.DataFrame | None:
    """`last_values`' long rows (run_id, metric, value) found in numpy, or None when the
    history does not fit this way (names not categorical, nulls, too many series).

    Each series is a slot of an array indexed by its run's and metric's codes; two
    `maximum.at` passes find each slot's largest step, then the last row at that step.
    About 10 ns a row on one core, where Polars grouping by two keys cost 25 to 60 ns on
    two (5 M rows: 0.04 s against 0.13 to 0.3 s of CPU)."""
    names = history.select("run_id", "metric")
    if not all(isinstance(t, pl.Categorical) for t in names.dtypes):
        return None
    if history.select(
        pl.any_horizontal(pl.col("run_id", "metric", "step").null_count() > 0)
    ).item():
        return None
    n = history.height
    limit = 4 * n + 65_536  # slots per row beyond which they would not pay
    run_codes = history["run_id"].to_physical().to_numpy()
    metric_codes = history["metric"].to_physical().to_numpy()
    run_count, metric_count = int(run_codes.max()) + 1, int(metric_codes.max()) + 1
    if run_count * metric_count > limit:
        # Polars' codes number every name of the process: renumber the ones used here
        run_codes, run_count = _dense(run_codes, limit)
        metric_codes, metric_count = _dense(metric_codes, limit)
        if run_count * metric_count > limit:
            return None
    slot = run_codes.astype(np.int64) * metric_count + metric_codes
    steps = history["step"].to_numpy()
    largest = np.full(run_count * metric_count, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(largest, slot, steps)
    at_largest = np.flatnonzero(steps == largest[slot])
    row = np.full(run_count * metric_count, -1, dtype=np.int64)
    np.maximum.at(row, slot[at_largest], at_largest)
    rows = pl.Series(row[row >= 0])
    return history.select(pl.col("run_id", "metric", "value").gather(rows))


def _dense(codes: np.ndarray, limit: int) -> tuple[np.ndarray, int]:
    """Codes renumbered 0..k-1 in code order, and k (`limit` + 1 when the codes are too
    spread out to index)."""
    if int(codes.max()) >= limit:
        return codes, limit + 1
    present = np.zeros(int(codes.max()) + 1, dtype=bool)
    present[codes] = True
    number = np.cumsum(present, dtype=np.int64) - 1
    return number[codes], int(number[-1]) + 1


def _last_by_group(history: pl.DataFrame) -> pl.DataFrame:
    """`last_values`' long rows by Polars' group-by (any name type, null steps)."""
    # A series whose last logged point is at its largest step (nearly all: steps only
    # grow) ends with the value wanted; `last` and `max` per group are cheap, a filter
    # inside each group is not.
    ends = history.group_by("run_id", "metric").agg(
        pl.col("value").last(),
        (pl.col("step").last() == pl.col("step").max()).fill_null(False).alias("at_end"),
    )
    if ends["at_end"].all():
        return ends.drop("at_end")
    # The others (a step logged after a larger one, or null steps): the value at the
    # largest step, the last logged of those, over those series' rows only.
    others = ends.filter(~pl.col("at_end")).select("run_id", "metric")
    redone = (
        history.join(others, on=["run_id", "metric"], how="semi", maintain_order="left")
        .group_by("run_id", "metric")
        .agg(pl.col("value").filter(pl.col("step") == pl.col("step").max()).last())
    )
    return pl.concat([ends.filter(pl.col("at_end")).drop("at_end"), redone])


def assemble(
    records: list[RunRecord],
    chunks: list[pl.DataFrame],
    *,
    parse_strings: bool = False,
) -> Runs:
    """Build a checked `Runs` from run records and history chunks."""
    history = _history(chunks)
    base: dict[str, list[Any]] = {
        "id": [r.id for r in records],
        "name": [r.name if r.name is not None else r.id for r in records],
        "project": [r.project for r in records],
        "group": [r.group for r in records],
        "job_type": [r.job_type for r in records],
        "state": [r.state for r in records],
        "tags": [list(r.tags) for r in records],
        "created_at": [r.created_at for r in records],
        "runtime": [r.runtime for r in records],
        "source": [r.source for r in records],
    }
    runs = pl.DataFrame(
        base,
        schema={
            "id": pl.String,
            "name": pl.String,
            "project": pl.String,
            "group": pl.String,
            "job_type": pl.String,
            "state": pl.String,
            "tags": pl.List(pl.String),
            "created_at": pl.Datetime("us", "UTC"),
            "runtime": pl.Float64,
            "source": pl.String,
        },
    )
    extra: list[pl.Series] = []
    configs = [flatten(r.config) for r in records]
    for key in sorted({k for c in configs for k in c}):
        extra.append(_column(f"{CONFIG_PREFIX}{key}", [c.get(key) for c in configs], parse_strings))
    given = [r.summary for r in records]
    summaries = [flatten(s) if s is not None else {} for s in given]
    for key in sorted({k for s in summaries for k in s}):
        extra.append(_column(f"{SUMMARY_PREFIX}{key}", [s.get(key) for s in summaries], False))
    if extra:
        runs = runs.with_columns(extra)
    hist = history.with_columns(
        pl.col("run_id").cast(pl.Categorical), pl.col("metric").cast(pl.Categorical)
    ).select(list(HISTORY_SCHEMA))
    if history.height:
        # Summaries a source wrote win; every other metric's summary is its last value
        # (grouped by the categorical columns: three times faster than by the strings).
        last = last_values(hist)
        if last.width > 1:
            runs = _fill_summary(runs, last)
    return Runs(runs, hist.lazy())


def _fill_summary(runs: pl.DataFrame, last: pl.DataFrame) -> pl.DataFrame:
    """Join derived summaries, filling (not replacing) columns a source already gave."""
    joined = runs.join(last, on="id", how="left", suffix="__derived")
    fills = []
    drop = []
    for column in last.columns:
        if column == "id":
            continue
        derived = f"{column}__derived"
        if derived in joined.columns:
            if joined.schema[column].is_numeric() or joined.schema[column] == pl.Null:
                fills.append(
                    pl.coalesce(pl.col(column).cast(pl.Float64), pl.col(derived)).alias(column)
                )
            drop.append(derived)
    if fills:
        joined = joined.with_columns(fills)
    return joined.drop(drop)


def unique_ids(records: list[RunRecord]) -> None:
    """Make run ids unique in place ('id', 'id-2', ...) so that a `Runs` can hold them all."""
    seen: dict[str, int] = {}
    for record in records:
        count = seen.get(record.id, 0) + 1
        seen[record.id] = count
        if count > 1:
            record.id = f"{record.id}-{count}"
