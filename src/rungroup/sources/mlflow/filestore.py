"""MLflow's `mlruns/` file store, read as the text files it is (without the `mlflow` package)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from rungroup.sources.files import (
    MAX_TEXT_BYTES,
    _check_nodes,
    _repair,
    read_bytes,
    read_text,
    subfolders,
    walk,
    yaml_value,
)
from rungroup.sources.mlflow.records import (
    FILE_STATES,
    HISTORY_COLUMNS,
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

#: `_parsed`'s frame: `HISTORY_COLUMNS` with the run and key as categories.
HISTORY_FRAME = HISTORY_COLUMNS | {"run_id": pl.Categorical, "metric": pl.Categorical}


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


class _MetaLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """`files._BoundedLoader` on libyaml's parser where PyYAML has it: the pure-Python
    parser costs about 1 ms a meta.yaml, most of a 1,000-run store's read."""

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _check_nodes(node)
        return node


def _meta_value(text: str) -> tuple[Any, bool]:
    """`files.yaml_value` of a meta.yaml, parsed by `_MetaLoader`. The constructor and
    resolver are PyYAML's own, so the values are the same; text libyaml refuses goes
    through `yaml_value`, whose error (or value) is then the one given."""
    # Without an alias ('*') nothing expands: no node count to check (the nesting depth
    # is checked by `_repair`).
    loader = _MetaLoader if "*" in text else getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        value = yaml.load(text, Loader=loader)
    except (yaml.YAMLError, RecursionError, ValueError):
        return yaml_value(text)
    return _repair(value)


def _meta(path: Path) -> dict[str, Any]:
    """A meta.yaml (bounded: `files.yaml_value`); raises `OSError` or `ValueError`."""
    loaded, repaired = _meta_value(read_text(path))
    if repaired:
        warn(path, "a lone surrogate (\\udXXX) in a name or text replaced by U+FFFD")
    if not isinstance(loaded, dict):
        raise ValueError("meta.yaml is not a mapping")
    return loaded


def _key_files(folder: Path) -> dict[str, Path]:
    """`metrics/`, `params/`, `tags/`: one file per key; a key with '/' is a subfolder."""
    # Fast path: a folder of plain files, as MLflow writes it, is one listing (no stat per
    # file); anything else (subfolders, links, other kinds) goes through `files.walk`.
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        if all(e.is_file(follow_symlinks=False) for e in entries):
            return {shown(e.name): Path(e.path) for e in entries}
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError:
        pass
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
    """Every `metrics/<key>` file: their bytes joined and parsed at once (`_parsed`); a part
    that does not parse is narrowed down by halves (`_narrowed`), and each file that still
    fails alone is read by `_metric_file`, which says which line is wrong."""
    if not files:
        return []
    blobs: list[bytes | None] = []
    for _, _, path in files:
        try:
            blobs.append(read_bytes(path))
        except OSError:
            blobs.append(None)  # `_metric_file` reads it again and warns
    frames = [f for f in _narrowed(files, blobs, 0, len(files)) if f.height]
    return [pl.concat(frames, how="vertical_relaxed")] if len(frames) > 1 else frames


def _narrowed(
    files: list[tuple[str, str, Path]],
    blobs: list[bytes | None],
    first: int,
    end: int,
    parsed: pl.DataFrame | bool | None = True,
) -> list[pl.DataFrame]:
    """The points of `files[first:end]` in file order (`parsed`: their `_parsed` frame when
    already known, True when not). A part that fails is split in two; when both halves fail
    too, bad files are everywhere and the part is read file by file (no further halving:
    the cost stays that of one more parse)."""
    if parsed is True:
        parsed = _parsed(files[first:end], blobs[first:end])
    if isinstance(parsed, pl.DataFrame):
        return [parsed]
    if end - first > 1:
        middle = (first + end) // 2
        left = _parsed(files[first:middle], blobs[first:middle])
        right = _parsed(files[middle:end], blobs[middle:end])
        if left is not None or right is not None or end - first == 2:
            return _narrowed(files, blobs, first, middle, left) + _narrowed(
                files, blobs, middle, end, right
            )
    frames = []
    for run_id, key, path in files[first:end]:
        alone = _metric_file(path, run_id, key)
        if alone is not None:
            frames.append(alone.with_columns(pl.col("run_id", "metric").cast(pl.Categorical)))
    return frames


def _parsed(files: list[tuple[str, str, Path]], blobs: list[bytes | None]) -> pl.DataFrame | None:
    """Metric files read as one text, each a block of 'timestamp value step' lines; None
    unless every line is a point MLflow writes (then `_metric_file` finds the bad ones).
    Each point's run and key come from the number of lines of its file, as categories: no
    text per point is made."""
    counts = []
    parts = []
    for blob in blobs:
        if blob is None:
            return None
        if blob and not blob.endswith(b"\n"):
            blob += b"\n"
        counts.append(blob.count(b"\n"))
        parts.append(blob)
    total = sum(counts)
    if not total:
        return pl.DataFrame(schema=HISTORY_FRAME)
    try:
        table = pl.read_csv(
            b"".join(parts),
            has_header=False,
            separator=" ",
            new_columns=["timestamp_ms", "value", "step"],
            schema_overrides={"timestamp_ms": pl.Int64, "value": pl.Float64, "step": pl.Int64},
        )
    except pl.exceptions.PolarsError:
        return None
    # A row per line (no empty or extra lines), three columns, no gaps, times in range.
    if (
        table.height != total
        or table.width != 3
        or table.select(pl.any_horizontal(pl.all().is_null()).any()).item()
        or not table["timestamp_ms"].is_between(MIN_MS, MAX_MS).all()
    ):
        return None
    which = pl.Series(np.repeat(np.arange(len(files), dtype=np.uint32), counts))
    names = pl.DataFrame(
        {"run_id": [r for r, _, _ in files], "metric": [k for _, k, _ in files]},
        schema={"run_id": pl.Categorical, "metric": pl.Categorical},
    )
    return names[which].hstack(table.select("step", "timestamp_ms", "value"))


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
