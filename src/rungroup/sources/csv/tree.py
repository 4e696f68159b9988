"""CSV and JSON-lines trees: one run per file, path template fields -> config.

`load_csv("runs/{algo}/{env}/seed_{seed}/progress.csv")` reads every matching file; the step
column is found among `STEP_COLUMNS` (or named with `step=`), every other numeric column is a
metric. PyTorch Lightning's `metrics.csv` (sparse rows: each row holds only what was logged at
that step) with its `hparams.yaml`, and the `progress.csv` of Stable-Baselines3 / baselines
load as they are. A config file beside the data file (`hparams.yaml`, `config.yaml`,
`config.json`, `params.yaml`, `params.json`) fills `config.*` too.
"""

from __future__ import annotations

import io
import math
import os
import stat
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rungroup.runs import Runs
from rungroup.sources.csv.stacked import Stacked, read_stacked
from rungroup.sources.files import (
    MAX_NESTING,
    NotReadableError,
    json_value,
    read_bytes,
    read_text,
    walk_names,
    yaml_value,
)
from rungroup.sources.frames.convert import (
    STEP_COLUMNS,
    TIME_COLUMNS,
    TIMESTAMP_COLUMNS,
    detect_column,
    wide_columns,
    wide_to_long,
)
from rungroup.sources.runrecords import (
    CHUNK_SCHEMA,
    MAX_SECONDS,
    MAX_STEP,
    MIN_SECONDS,
    RunRecord,
    Template,
    apply_fields,
    assemble,
    format_option,
    progress,
    shown,
    utc_from_seconds,
    warn,
)

__all__ = ["load_csv"]

_RUN = "\x00run"  # the run column of the stacked tables (no CSV header is named so)
_PATH = "\x00path"
_LINE = "\x00line"  # the line each row of a JSON-lines file came from, for warnings

DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")
CONFIG_FILES = (
    "hparams.yaml",
    "hparams.yml",
    "config.yaml",
    "config.yml",
    "config.json",
    "params.yaml",
    "params.json",
)


def _find_files(source: str | Path) -> tuple[Path, list[tuple[Path, dict[str, Any]]]]:
    """(root, [(file, template fields)]) for a file, a folder or a path template."""
    text = str(source)
    if "{" not in text and "*" not in text:
        path = Path(text)
        if path.is_dir():
            return path, [(p, {}) for p in walk_names(path, DATA_SUFFIXES)]
        if path.exists():
            return path.parent, [(path, {})]  # read_bytes refuses what is not a file
        raise FileNotFoundError(f"no such file or folder: {text}")
    template = Template.parse(text)
    found: list[tuple[Path, dict[str, Any]]] = []
    for path, fields in template.matches():
        if path.is_dir():
            for data in walk_names(path, DATA_SUFFIXES):
                if data.parent == path:
                    found.append((data, fields))
        elif path.suffix.lower() in DATA_SUFFIXES and _regular(path):
            found.append((path, fields))
    return template.root, found


def _regular(path: Path) -> bool:
    """True for a regular file; a FIFO, device or socket matched by a template is a warning."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        warn(path, f"not read ({error.strerror or error}); skipped")
        return False
    if not stat.S_ISREG(mode):
        warn(path, "not a regular file (a FIFO, device or socket); skipped")
        return False
    return True


def _run_ids(root: Path, files: list[Path]) -> list[str]:
    """The folder of the file when it is the only data file there, else the file's path
    without its suffix; ids that two files would share (`x.csv` beside `x.tsv`, `g.csv`
    beside a folder `g/`) keep their suffix, with a warning."""
    per_folder: dict[Path, int] = {}
    for f in files:
        per_folder[f.parent] = per_folder.get(f.parent, 0) + 1
    ids = []
    relatives = []
    for f in files:
        try:
            relative = f.relative_to(root)
        except ValueError:
            relative = f
        relatives.append(relative)
        if per_folder[f.parent] == 1 and relative.parent != Path():
            ids.append(shown(relative.parent.as_posix()))
        else:
            ids.append(shown(relative.with_suffix("").as_posix()))
    counts: dict[str, int] = {}
    for run_id in ids:
        counts[run_id] = counts.get(run_id, 0) + 1
    for index, run_id in enumerate(ids):
        if counts[run_id] > 1:
            ids[index] = shown(relatives[index].as_posix())
            warn(
                files[index],
                f"another data file is run {run_id!r} too; this one is run {ids[index]!r}",
            )
    return ids


def _read_table(path: Path) -> pl.DataFrame:
    """A data file as a frame of its columns: numbers as Float64, anything else as text."""
    data = read_bytes(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _read_jsonl(path, data)
    separator = "\t" if path.suffix.lower() == ".tsv" else ","
    if not data.strip():
        warn(path, "empty file; no points")
        return pl.DataFrame()
    try:
        # Fast path: Polars infers the types; a column of numbers with text further down
        # fails the parse and the file is read again as text below.
        fast = pl.read_csv(
            io.BytesIO(data),
            separator=separator,
            infer_schema_length=1000,
            raise_if_empty=False,
            encoding="utf8-lossy",
        )
        if all(d.is_numeric() or d == pl.Null for d in fast.schema.values()):
            return fast.with_columns(pl.all().cast(pl.Float64))
    except pl.exceptions.PolarsError:
        pass
    raw = pl.read_csv(
        io.BytesIO(data),
        separator=separator,
        infer_schema=False,
        truncate_ragged_lines=True,
        raise_if_empty=False,
        encoding="utf8-lossy",
    )
    columns = []
    for name in raw.columns:
        column = raw[name]
        numbers = column.cast(pl.Float64, strict=False)
        text_present = column.is_not_null() & (column.str.strip_chars() != "")
        if (numbers.is_null() & text_present).any():
            lowered = column.str.to_lowercase()
            bad = numbers.is_null() & text_present
            if lowered.drop_nulls().is_in(["true", "false"]).all():
                numbers = (lowered == "true").cast(pl.Float64)
            elif numbers.is_not_null().sum() > bad.sum():
                # Mostly numbers: a metric with a few cells that are not (a crash, a typo).
                first = int(bad.arg_true()[0])
                warn(
                    path,
                    f"line {first + 2}: {column[first]!r} in column {name!r} is not a number; "
                    f"{bad.sum()} cell(s) left out",
                )
            else:
                columns.append(column)  # a text column: not a metric
                continue
        columns.append(numbers)
    return pl.DataFrame(columns)


def _read_many(paths: list[Path]) -> dict[str, pl.DataFrame]:
    """All CSV files in one parallel scan when they share their header and are all numbers
    (the common case of a tree written by one program); {} when they do not."""
    if len(paths) < 2:
        return {}
    try:
        stacked = pl.scan_csv(
            [str(p) for p in paths], include_file_paths=_PATH, infer_schema_length=1000
        ).collect()
    except (pl.exceptions.PolarsError, OSError, UnicodeError):
        return {}
    if not all(d.is_numeric() or d == pl.Null for c, d in stacked.schema.items() if c != _PATH):
        return {}
    parts = stacked.with_columns(pl.all().exclude(_PATH).cast(pl.Float64)).partition_by(
        _PATH, as_dict=True, include_key=False
    )
    return {str(key[0]): frame for key, frame in parts.items()}


def _read_jsonl(path: Path, data: bytes) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    text = data.decode("utf-8-sig", errors="replace")
    repaired: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row, fixed = json_value(line)
        except ValueError as error:
            warn(path, f"line {number} is not JSON ({str(error)[:60]}); skipped")
            continue
        if not isinstance(row, dict):
            warn(path, f"line {number} is not a JSON object; skipped")
            continue
        if fixed:
            repaired.append(number)
        rows.append({k: _number(v) for k, v in _flat(row).items()})
        lines.append(number)
    if repaired:
        warn(
            path,
            f"line {repaired[0]}: a lone surrogate (\\udXXX) in a name or text replaced "
            f"by U+FFFD ({len(repaired)} lines)",
        )
    if not rows:
        return pl.DataFrame()
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    frame = pl.DataFrame(
        {n: [r.get(n) for r in rows] for n in names}, schema=dict.fromkeys(names, pl.Float64)
    )
    return frame.with_columns(pl.Series(_LINE, lines, pl.Int64))


def _number(value: Any) -> float | None:
    """A JSON number as a float (an integer too large for one is infinite), else None."""
    if not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _flat(row: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict) and depth < MAX_NESTING:
            out.update(_flat(value, f"{prefix}{key}/", depth + 1))
        elif not isinstance(value, (bool, dict)):
            out[f"{prefix}{key}"] = value
    return out


def _names_in(folder: Path, listed: dict[Path, frozenset[str] | None]) -> frozenset[str] | None:
    """The names in a folder, listed once per load (None when it cannot be listed)."""
    if folder not in listed:
        try:
            with os.scandir(folder) as entries:
                listed[folder] = frozenset(entry.name for entry in entries)
        except OSError:
            listed[folder] = None  # searchable but not readable: each name is tried
    return listed[folder]


def _config_beside(
    path: Path, listed: dict[Path, frozenset[str] | None] | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    # One listing of the folder instead of a look-up of every config file name in it.
    names = _names_in(path.parent, {} if listed is None else listed)
    for name in CONFIG_FILES:
        if names is not None and name not in names:
            continue
        candidate = path.parent / name
        if names is None and not os.path.lexists(candidate):
            continue
        try:
            text = read_text(candidate)
            if candidate.suffix == ".json":
                loaded, repaired = json_value(text)
            else:
                loaded, repaired = yaml_value(text)
            if repaired:
                warn(candidate, "a lone surrogate (\\udXXX) in a name or text replaced by U+FFFD")
        except NotReadableError as error:
            warn(candidate, f"config not read ({error})")
            continue
        except (OSError, ValueError) as error:
            warn(candidate, f"config not read ({type(error).__name__}: {error})")
            continue
        if isinstance(loaded, dict):
            config.update({str(k): v for k, v in loaded.items()})
        elif loaded is not None:
            warn(candidate, "config is not a mapping; skipped")
    return config


def _outside(series: pl.Series, low: float, high: float) -> pl.Series | None:
    """Where `series` holds a value that is not within [low, high] (NaN is not), or None
    when there is none (checked in numpy first: this runs once per column of every file)."""
    if series.null_count() == 0:
        values = series.to_numpy()
        if ((values >= low) & (values <= high)).all():
            return None
    bad = series.is_not_null() & ~(series.is_between(low, high) & series.is_not_nan())
    return bad if bad.any() else None


def _line(table: pl.DataFrame, row: int) -> int:
    """The file line of a row: JSON-lines frames carry it, a CSV row follows its header."""
    return int(table[_LINE][row]) if _LINE in table.columns else row + 2


def _checked(
    table: pl.DataFrame,
    path: Path,
    step_col: str | None,
    time_col: str | None,
    stamp_col: str | None,
) -> pl.DataFrame:
    """`table` without the rows whose step is not a step number (NaN, infinite, beyond
    Int64), and with times that are not finite and timestamps that are not seconds since 1970
    (`is_time`; milliseconds are not) made null; one warning each, naming the first line."""
    if step_col is not None and table.schema[step_col].is_float():
        bad = _outside(table[step_col], -MAX_STEP, MAX_STEP)
        if bad is not None:
            first = int(bad.arg_true()[0])
            warn(
                path,
                f"line {_line(table, first)}: step {table[step_col][first]} in column "
                f"{step_col!r} is not a step number; {bad.sum()} row(s) skipped",
            )
            table = table.filter(~bad)
    for column, low, high, what in (
        (time_col, -sys.float_info.max, sys.float_info.max, "is not a number of seconds"),
        (stamp_col, MIN_SECONDS, MAX_SECONDS, "is not seconds since 1970 (milliseconds?)"),
    ):
        if column is None or not table.schema[column].is_float():
            continue
        bad = _outside(table[column], low, high)
        if bad is not None:
            first = int(bad.arg_true()[0])
            warn(
                path,
                f"line {_line(table, first)}: {column} {table[column][first]} {what}; "
                f"{bad.sum()} value(s) left out",
            )
            table = table.with_columns(table[column].set(bad, None))
    return table


def _warn_duplicates(path: Path, columns: list[str]) -> None:
    for column in columns:
        original = column.rpartition("_duplicated_")[0]
        if original and original in columns:
            warn(path, f"column {original!r} appears twice in the header; one is {column!r}")


def _columns(
    table: pl.DataFrame,
    step: str | None,
    time: str | None,
    timestamp: str | None,
    metrics: list[str] | None,
) -> tuple[str | None, str | None, str | None, list[str]]:
    """(step, time and timestamp columns, metric columns) of a table, options first."""
    numeric = [c for c, d in table.schema.items() if d.is_numeric() and c != _LINE]
    step_col = step if step in table.columns else detect_column(numeric, STEP_COLUMNS)
    rest = [c for c in numeric if c != step_col]
    time_col = time if time in table.columns else detect_column(rest, TIME_COLUMNS)
    rest = [c for c in rest if c != time_col]
    stamp_col = timestamp if timestamp in table.columns else detect_column(rest, TIMESTAMP_COLUMNS)
    rest = [c for c in rest if c != stamp_col]
    chosen = [m for m in metrics if m in table.columns] if metrics is not None else rest
    return step_col, time_col, stamp_col, chosen


class _Bulk:
    """What `load_csv` finds per file, found for every file of a stacked table at once.

    A file whose step, time or timestamp needs a warning is not `clean`: it goes through the
    per-file checks (on its rows of the table) so that the warning names its line.
    """

    def __init__(
        self,
        stacked: Stacked,
        step: str | None,
        time: str | None,
        timestamp: str | None,
        metrics: list[str] | None,
    ) -> None:
        self.stacked = stacked
        frame = stacked.frame
        self.step_col, time_col, stamp_col, chosen = _columns(frame, step, time, timestamp, metrics)
        self.shape = (self.step_col, time_col, stamp_col, tuple(chosen))
        self.columns = list(dict.fromkeys(c for c in (*self.shape[:3], *chosen) if c is not None))
        count = len(stacked.paths)
        counts = np.diff(stacked.starts)
        # A file with a header and no rows is read the general way, as before.
        self.position = {p: i for i, p in enumerate(stacked.paths) if counts[i] > 0}
        self.run_ids: list[str] = [""] * count
        self.clean = [True] * count
        self.sparse = [False] * count
        self.created_at: list[datetime | None] = [None] * count
        self.runtime: list[float | None] = [None] * count
        files: pl.Series | None = None
        bad_rows: pl.Series | None = None
        for column, low, high in (
            (self.step_col, -MAX_STEP, MAX_STEP),
            (time_col, -sys.float_info.max, sys.float_info.max),
            (stamp_col, MIN_SECONDS, MAX_SECONDS),
        ):
            if column is not None:
                bad = _outside(frame[column], low, high)
                if bad is not None:
                    bad_rows = bad if bad_rows is None else bad_rows | bad
        if bad_rows is not None:
            files = stacked.file_index()
            for position in files.filter(bad_rows).unique().to_list():
                self.clean[position] = False
        if frame.width and frame.null_count().sum_horizontal().item():
            files = stacked.file_index() if files is None else files
            with_nulls = files.filter(
                frame.select(pl.any_horizontal(pl.all().is_null())).to_series()
            )
            for position in with_nulls.unique().to_list():
                self.sparse[position] = True
        for column, reduce, target in (
            (stamp_col, "min", "created_at"),
            (time_col, "max", "runtime"),
        ):
            if column is None:
                continue
            files = stacked.file_index() if files is None else files
            per_file = (
                pl.DataFrame({"file": files, "value": frame[column]})
                .group_by("file")
                .agg(getattr(pl.col("value"), reduce)())
            )
            found = getattr(self, target)
            for position, value in per_file.iter_rows():
                if value is not None:
                    found[position] = utc_from_seconds(value) if target == "created_at" else value

    def pieces(self, positions: list[int]) -> list[pl.DataFrame]:
        """The rows of files (positions in order) as tables of the run and the columns, one
        slice of the stacked table for each run of neighbouring files."""
        out = []
        begin = 0
        while begin < len(positions):
            end = begin + 1
            while end < len(positions) and positions[end] == positions[end - 1] + 1:
                end += 1
            first, last = positions[begin], positions[end - 1]
            starts = self.stacked.starts
            counts = np.diff(starts[first : last + 2])
            runs = pl.Series(_RUN, self.run_ids[first : last + 1], pl.Categorical).gather(
                np.repeat(np.arange(len(counts), dtype=np.uint32), counts)
            )
            rows = self.stacked.frame.slice(int(starts[first]), int(counts.sum()))
            out.append(rows.select(self.columns).insert_column(0, runs))
            begin = end
        return out


def _pieces(tables: list[pl.DataFrame | int], bulk: _Bulk | None) -> list[pl.DataFrame]:
    """Frames in order, the positions of stacked files replaced by slices of the table."""
    out: list[pl.DataFrame] = []
    positions: list[int] = []
    for table in tables:
        if isinstance(table, int):
            positions.append(table)
            continue
        if positions and bulk is not None:
            out.extend(bulk.pieces(positions))
            positions = []
        out.append(table)
    if positions and bulk is not None:
        out.extend(bulk.pieces(positions))
    return out


#: `CHUNK_SCHEMA` with the run and metric names categorical, as `assemble` makes them.
_CATEGORICAL_CHUNK: dict[str, pl.DataType] = {
    **CHUNK_SCHEMA,
    "run_id": pl.Categorical(),
    "metric": pl.Categorical(),
}


def _long(
    frame: pl.DataFrame,
    step: str | None,
    time: str | None,
    timestamp: str | None,
    metrics: list[str],
) -> pl.DataFrame:
    """`wide_to_long(frame, run=_RUN, ...)` with a categorical run column and the run and
    metric names kept categorical: the same rows in the same order (one metric after the
    other, nulls dropped), without making and hashing a string for every point (a third of
    a stacked read's time). The tests hold it equal to `wide_to_long`."""
    if timestamp is not None and isinstance(frame.schema[timestamp], pl.Datetime):
        return _categorical(
            wide_to_long(
                frame, run=_RUN, step=step, time=time, timestamp=timestamp, metrics=metrics
            )
        )
    base = wide_columns(frame, pl.col(_RUN), step, time, timestamp, metrics)
    if not metrics:
        return pl.DataFrame(schema=_CATEGORICAL_CHUNK)
    index = base.select("run_id", "step", "time", "timestamp")
    parts = []
    for metric in metrics:
        values = base[f"m:{metric}"]
        names = pl.Series("metric", [metric], pl.Categorical)
        part = index.with_columns(names.gather(pl.zeros(base.height, pl.UInt32, eager=True)))
        part = part.with_columns(values.alias("value"))
        parts.append(part.filter(values.is_not_null()) if values.null_count() else part)
    return pl.concat(parts, rechunk=False).select(list(_CATEGORICAL_CHUNK))


def _categorical(chunk: pl.DataFrame) -> pl.DataFrame:
    return chunk.with_columns(pl.col("run_id", "metric").cast(pl.Categorical))


def load_csv(
    source: str | Path,
    *,
    step: str | None = None,
    time: str | None = None,
    timestamp: str | None = None,
    metrics: list[str] | None = None,
    project: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    name: str | None = None,
    config_files: bool = True,
    progress_bar: bool | None = None,
) -> Runs:
    """Load CSV / TSV / JSON-lines files as runs, one run per file.

    `source` is a file, a folder (every data file below it) or a path template such as
    ``"runs/{algo}/{env}/seed_{seed}/progress.csv"`` whose fields go to `config.*` (numbers
    parsed; fields named `group`, `job_type`, `name` or `project` fill those columns). `group`,
    `job_type` and `name` may also name a field or be a format string (``"{algo}-{env}"``).
    The step column is `step=` or the first of `STEP_COLUMNS` found (exactly or after a
    '/'), else the row number; `time=`/`timestamp=` likewise from `TIME_COLUMNS` and
    `TIMESTAMP_COLUMNS`. Every other numeric column is a metric (or only those in `metrics=`).
    """
    root, files = _find_files(source)
    ids = _run_ids(root, [f for f, _ in files])
    records: list[RunRecord] = []
    # Per shape, the tables to turn long together: a frame, or the position of a file whose
    # rows are taken from the stacked table in one piece with its neighbours.
    same_shape: dict[tuple[Any, ...], list[pl.DataFrame | int]] = {}
    candidates = [f for f, _ in files if f.suffix.lower() == ".csv" and shown(f) == str(f)]
    stacked = read_stacked(candidates)
    read = {} if stacked is not None else _read_many(candidates)
    bulk = _Bulk(stacked, step, time, timestamp, metrics) if stacked is not None else None
    listed: dict[Path, frozenset[str] | None] = {}
    for (path, fields), run_id in progress(
        zip(files, ids, strict=True), total=len(files), desc="csv", enabled=progress_bar
    ):
        position = bulk.position.get(str(path)) if bulk is not None else None
        table: pl.DataFrame | None = None
        if position is not None and bulk is not None and not bulk.clean[position]:
            table = bulk.stacked.rows(position)  # checked (and warned about) one by one
            position = None
        elif position is None:
            try:
                table = read.pop(str(path), None)
                if table is None:
                    table = _read_table(path)
            except (OSError, pl.exceptions.PolarsError, UnicodeDecodeError, ValueError) as error:
                warn(path, f"not read ({type(error).__name__}: {error})")
                continue
        record = RunRecord(id=run_id, source=f"csv:{shown(path)}", project=project)
        if config_files:
            record.config.update(_config_beside(path, listed))
        apply_fields(record, fields)
        for attribute, option in (("group", group), ("job_type", job_type), ("name", name)):
            value = format_option(option, {**record.config, **fields})
            if value is not None:
                setattr(record, attribute, value)
        if position is not None and bulk is not None:
            # A file of the stacked table: its columns, checks and times were found for all
            # files at once.
            _warn_duplicates(path, bulk.stacked.frame.columns)
            if step is not None and step not in bulk.stacked.frame.columns:
                warn(path, f"no step column {step!r}; points numbered in row order")
            record.created_at = bulk.created_at[position]
            record.runtime = bulk.runtime[position]
            records.append(record)
            bulk.run_ids[position] = run_id
            same_shape.setdefault((*bulk.shape, bulk.sparse[position]), []).append(position)
            continue
        assert table is not None
        _warn_duplicates(path, table.columns)
        step_col, time_col, stamp_col, chosen = _columns(table, step, time, timestamp, metrics)
        if step is not None and step not in table.columns:
            warn(path, f"no step column {step!r}; points numbered in row order")
        table = _checked(table, path, step_col, time_col, stamp_col)
        if stamp_col is not None and table.height:
            first = table[stamp_col].drop_nulls()
            if first.len():
                record.created_at = utc_from_seconds(float(first.min()))  # type: ignore[arg-type]
        if time_col is not None and table.height:
            times = table[time_col].drop_nulls()
            if times.len():
                record.runtime = float(times.max())  # type: ignore[arg-type]
        records.append(record)
        # Files with the same columns are turned long together: one unpivot, not one a file.
        sparse = table.width > 0 and bool(table.null_count().sum_horizontal().item())
        shape = (step_col, time_col, stamp_col, tuple(chosen), sparse)
        same_shape.setdefault(shape, []).append(
            table.select(
                pl.lit(run_id, pl.String).alias(_RUN),
                *{c: None for c in (step_col, time_col, stamp_col, *chosen) if c is not None},
            )
        )
    chunks: list[pl.DataFrame] = []
    for (step_col, time_col, stamp_col, chosen, sparse), tables in same_shape.items():
        if bulk is None:
            long = wide_to_long(
                pl.concat(_pieces(tables, bulk), how="vertical_relaxed"),
                run=_RUN,
                step=step_col,
                time=time_col,
                timestamp=stamp_col,
                metrics=list(chosen),
            )
        else:
            # All chunks categorical (assemble makes them so; a concat needs one type).
            pieces = [
                p.with_columns(pl.col(_RUN).cast(pl.Categorical)) for p in _pieces(tables, bulk)
            ]
            long = _long(
                pl.concat(pieces, how="vertical_relaxed"),
                step_col,
                time_col,
                stamp_col,
                list(chosen),
            )
        if sparse:
            # Lightning's sparse rows repeat `epoch` on every row: identical points carry
            # nothing.
            long = long.unique(
                subset=["run_id", "metric", "step", "value"], keep="first", maintain_order=True
            )
        chunks.append(long)
    return assemble(records, chunks, parse_strings=True)
