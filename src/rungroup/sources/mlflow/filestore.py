"""MLflow's `mlruns/` file store, read as the text files it is (without the `mlflow` package)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rungroup.sources.files import (
    MAX_TEXT_BYTES,
    read_bytes,
    read_text,
    subfolders,
    walk,
    yaml_value,
)
from rungroup.sources.mlflow.records import (
    FILE_STATES,
    MAX_MS,
    MIN_MS,
    _Raw,
    add_run,
    point_problem,
)
from rungroup.sources.runrecords import (
    progress,
    shown,
    warn,
)


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
        run = {
            "run_id": run_id,
            "name": meta.get("run_name"),
            "status": FILE_STATES.get(status, status) if isinstance(status, int) else status,
            "start_ms": meta.get("start_time"),
            "end_ms": meta.get("end_time"),
            "experiment_id": experiment_id,
        }
        if not add_run(raw, run, str(run_dir / "meta.yaml")):
            continue
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
    """Every `metrics/<key>` file: read as one text when all are plain lines of three
    numbers, else in one parallel scan when all parse, else one by one."""
    if not files:
        return []
    joined = _joined(files)
    if joined is not None:
        return [joined]
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
            and stacked["timestamp_ms"].is_between(MIN_MS, MAX_MS).all()
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


def _joined(files: list[tuple[str, str, Path]]) -> pl.DataFrame | None:
    """The metric files' lines parsed as one text (a scan of thousands of small files costs
    more in opening them than in parsing), each line's run and metric known by counting the
    lines of each file; None when a file is not plain 'timestamp value step' lines (no blank
    line, three numbers a line: a blank line would make the counts disagree with the rows)
    or cannot be read."""
    blobs: list[bytes] = []
    lines: list[int] = []
    for _, _, path in files:
        try:
            data = read_bytes(path)
        except OSError:
            return None
        if data and not data.endswith(b"\n"):
            data += b"\n"
        blobs.append(data)
        lines.append(data.count(b"\n"))
    text = b"".join(blobs)
    if not text:
        return None
    try:
        table = pl.read_csv(
            text,
            has_header=False,
            separator=" ",
            new_columns=["timestamp_ms", "value", "step"],
            schema={"timestamp_ms": pl.Int64, "value": pl.Float64, "step": pl.Int64},
        )
    except pl.exceptions.PolarsError:
        return None
    if (
        table.height != sum(lines)
        or table.select(pl.any_horizontal(pl.all().is_null()).any()).item()
        or not table["timestamp_ms"].is_between(MIN_MS, MAX_MS).all()
    ):
        return None
    owner = np.repeat(np.arange(len(files)), lines)
    return table.select(
        pl.Series("run_id", [run_id for run_id, _, _ in files], pl.String).gather(owner),
        pl.Series("metric", [key for _, key, _ in files], pl.String).gather(owner),
        "step",
        "timestamp_ms",
        "value",
    )


def _metric_file(path: Path, run_id: str, key: str) -> pl.DataFrame | None:
    """One `metrics/<key>` file: lines of 'timestamp value step' (old files: no step, 0).
    A line that is not a point MLflow writes (`point_problem`) is skipped with a warning
    naming the first such line and their number."""
    try:
        table = pl.read_csv(
            io.BytesIO(read_bytes(path)),
            separator=" ",
            has_header=False,
            infer_schema=False,
            truncate_ragged_lines=True,
            raise_if_empty=False,
            encoding="utf8-lossy",
        )
    except (OSError, pl.exceptions.PolarsError) as error:
        warn(path, f"metric not read ({error})")
        return None
    if table.width < 2:
        return None
    names = ["timestamp_ms", "value", "step"][: table.width]
    table = table.select(pl.nth(range(len(names)))).rename(
        dict(zip(table.columns[: len(names)], names, strict=True))
    )
    if "step" not in table.columns:  # MLflow before steps wrote 'timestamp value'
        table = table.with_columns(pl.lit("0").alias("step"))
    parsed = table.select(
        pl.lit(run_id, pl.String).alias("run_id"),
        pl.lit(key, pl.String).alias("metric"),
        pl.col("step").str.strip_chars().cast(pl.Int64, strict=False),
        pl.col("timestamp_ms").str.strip_chars().cast(pl.Int64, strict=False),
        pl.col("value").cast(pl.Float64, strict=False),
    )
    good = (
        pl.col("step").is_not_null()
        & pl.col("timestamp_ms").is_between(MIN_MS, MAX_MS)
        & pl.col("value").is_not_null()
    )
    bad = parsed.with_row_index("line", 1).filter(~good.fill_null(False))
    if bad.height:
        line = int(bad["line"][0])
        first = table.row(line - 1, named=True)
        why = point_problem(first["step"], first["timestamp_ms"], first["value"])
        warn(
            path,
            f"line {line} is not 'timestamp value step' ({why}); {bad.height} such line(s) skipped",
        )
        parsed = parsed.filter(good.fill_null(False))
    return parsed
