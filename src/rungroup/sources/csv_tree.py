"""CSV and JSON-lines trees: one run per file, path template fields -> config.

`load_csv("runs/{algo}/{env}/seed_{seed}/progress.csv")` reads every matching file; the step
column is found among `STEP_COLUMNS` (or named with `step=`), every other numeric column is a
metric. PyTorch Lightning's `metrics.csv` (sparse rows: each row holds only what was logged at
that step) with its `hparams.yaml`, and the `progress.csv` of Stable-Baselines3 / baselines
load as they are. A config file beside the data file (`hparams.yaml`, `config.yaml`,
`config.json`, `params.yaml`, `params.json`) fills `config.*` too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from rungroup.runs import Runs
from rungroup.sources.frames import (
    STEP_COLUMNS,
    TIME_COLUMNS,
    TIMESTAMP_COLUMNS,
    detect_column,
    wide_to_long,
)
from rungroup.sources.runrecords import (
    RunRecord,
    Template,
    apply_fields,
    assemble,
    format_option,
    progress,
    utc_from_seconds,
    warn,
)

__all__ = ["load_csv"]

_RUN = "\x00run"  # the run column of the stacked tables (no CSV header is named so)
_PATH = "\x00path"

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
        if path.is_file():
            return path.parent, [(path, {})]
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in DATA_SUFFIXES and p.is_file()
            )
            return path, [(p, {}) for p in files]
        raise FileNotFoundError(f"no such file or folder: {text}")
    template = Template.parse(text)
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in template.paths():
        fields = template.match(path.relative_to(template.root).as_posix()) or {}
        if path.is_dir():
            for data in sorted(path.iterdir()):
                if data.suffix.lower() in DATA_SUFFIXES and data.is_file():
                    found.append((data, fields))
        elif path.suffix.lower() in DATA_SUFFIXES:
            found.append((path, fields))
    return template.root, found


def _run_ids(root: Path, files: list[Path]) -> list[str]:
    """The folder of the file when it is the only data file there, else the file's path."""
    per_folder: dict[Path, int] = {}
    for f in files:
        per_folder[f.parent] = per_folder.get(f.parent, 0) + 1
    ids = []
    for f in files:
        try:
            relative = f.relative_to(root)
        except ValueError:
            relative = f
        if per_folder[f.parent] == 1 and relative.parent != Path():
            ids.append(relative.parent.as_posix())
        else:
            ids.append(relative.with_suffix("").as_posix())
    return ids


def _read_table(path: Path) -> pl.DataFrame:
    """A data file as a frame of its columns: numbers as Float64, anything else as text."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _read_jsonl(path)
    separator = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        # Fast path: Polars infers the types; a column of numbers with text further down
        # fails the parse and the file is read again as text below.
        fast = pl.read_csv(
            path, separator=separator, infer_schema_length=1000, raise_if_empty=False
        )
        if all(d.is_numeric() or d == pl.Null for d in fast.schema.values()):
            return fast.with_columns(pl.all().cast(pl.Float64))
    except pl.exceptions.PolarsError:
        pass
    raw = pl.read_csv(
        path,
        separator=separator,
        infer_schema=False,
        truncate_ragged_lines=True,
        raise_if_empty=False,
    )
    columns = []
    for name in raw.columns:
        column = raw[name]
        numbers = column.cast(pl.Float64, strict=False)
        text_present = column.is_not_null() & (column.str.strip_chars() != "")
        if (numbers.is_null() & text_present).any():
            lowered = column.str.to_lowercase()
            if lowered.drop_nulls().is_in(["true", "false"]).all():
                numbers = (lowered == "true").cast(pl.Float64)
            else:
                columns.append(column)
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
    except (pl.exceptions.PolarsError, OSError):
        return {}
    if not all(d.is_numeric() or d == pl.Null for c, d in stacked.schema.items() if c != _PATH):
        return {}
    parts = stacked.with_columns(pl.all().exclude(_PATH).cast(pl.Float64)).partition_by(
        _PATH, as_dict=True, include_key=False
    )
    return {str(key[0]): frame for key, frame in parts.items()}


def _read_jsonl(path: Path) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as error:
                warn(path, f"line {number} is not JSON ({error.args[0][:60]}); skipped")
                continue
            if not isinstance(row, dict):
                warn(path, f"line {number} is not a JSON object; skipped")
                continue
            rows.append(
                {
                    k: float(v) if isinstance(v, (int, float)) else None
                    for k, v in _flat(row).items()
                }
            )
    if not rows:
        return pl.DataFrame()
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return pl.DataFrame(
        {n: [r.get(n) for r in rows] for n in names}, schema=dict.fromkeys(names, pl.Float64)
    )


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}/"))
        elif not isinstance(value, bool):
            out[f"{prefix}{key}"] = value
    return out


def _config_beside(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in CONFIG_FILES:
        candidate = path.parent / name
        if not candidate.is_file():
            continue
        try:
            text = candidate.read_text(encoding="utf-8")
            loaded = json.loads(text) if candidate.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as error:
            warn(candidate, f"config not read ({type(error).__name__}: {error})")
            continue
        if isinstance(loaded, dict):
            config.update({str(k): v for k, v in loaded.items()})
        elif loaded is not None:
            warn(candidate, "config is not a mapping; skipped")
    return config


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
    same_shape: dict[tuple[Any, ...], list[pl.DataFrame]] = {}
    read = _read_many([f for f, _ in files if f.suffix.lower() == ".csv"])
    for (path, fields), run_id in progress(
        zip(files, ids, strict=True), total=len(files), desc="csv", enabled=progress_bar
    ):
        try:
            table = read.pop(str(path), None)
            if table is None:
                table = _read_table(path)
        except (OSError, pl.exceptions.PolarsError, UnicodeDecodeError, ValueError) as error:
            warn(path, f"not read ({type(error).__name__}: {error})")
            continue
        record = RunRecord(id=run_id, source=f"csv:{path}", project=project)
        if config_files:
            record.config.update(_config_beside(path))
        apply_fields(record, fields)
        for attribute, option in (("group", group), ("job_type", job_type), ("name", name)):
            value = format_option(option, {**record.config, **fields})
            if value is not None:
                setattr(record, attribute, value)
        numeric = [c for c, d in table.schema.items() if d.is_numeric()]
        step_col = step if step in table.columns else detect_column(numeric, STEP_COLUMNS)
        rest = [c for c in numeric if c != step_col]
        time_col = time if time in table.columns else detect_column(rest, TIME_COLUMNS)
        rest = [c for c in rest if c != time_col]
        stamp_col = (
            timestamp if timestamp in table.columns else detect_column(rest, TIMESTAMP_COLUMNS)
        )
        rest = [c for c in rest if c != stamp_col]
        chosen = [m for m in metrics if m in table.columns] if metrics is not None else rest
        if step is not None and step not in table.columns:
            warn(path, f"no step column {step!r}; points numbered in row order")
        if stamp_col is not None and table.height:
            first = table[stamp_col].drop_nulls()
            if first.len() and math.isfinite(float(first.min())):  # type: ignore[arg-type]
                record.created_at = utc_from_seconds(float(first.min()))  # type: ignore[arg-type]
        if time_col is not None and table.height:
            times = table[time_col].drop_nulls()
            if times.len():
                record.runtime = float(times.max())  # type: ignore[arg-type]
        records.append(record)
        # Files with the same columns are turned long together: one unpivot, not one a file.
        sparse = bool(table.null_count().sum_horizontal().item())
        shape = (step_col, time_col, stamp_col, tuple(chosen), sparse)
        same_shape.setdefault(shape, []).append(
            table.select(
                pl.lit(run_id, pl.String).alias(_RUN),
                *{c: None for c in (step_col, time_col, stamp_col, *chosen) if c is not None},
            )
        )
    chunks: list[pl.DataFrame] = []
    for (step_col, time_col, stamp_col, chosen, sparse), tables in same_shape.items():
        long = wide_to_long(
            pl.concat(tables, how="vertical_relaxed"),
            run=_RUN,
            step=step_col,
            time=time_col,
            timestamp=stamp_col,
            metrics=list(chosen),
        )
        if sparse:
            # Lightning's sparse rows repeat `epoch` on every row: identical points carry
            # nothing.
            long = long.unique(
                subset=["run_id", "metric", "step", "value"], keep="first", maintain_order=True
            )
        chunks.append(long)
    return assemble(records, chunks, parse_strings=True)
