"""TensorBoard event files (`events.out.tfevents.*`), read without TensorFlow or tensorboard.

An event file is a TFRecord file (`records.py`) of `Event` protobufs (`decode.py`). Scalars
come either as `simple_value` (tensorboardX, torch.utils.tensorboard, TF1; their usual layout
is read in numpy, `layout.py`) or as a one-element `TensorProto` under the "scalars" plugin
(TF2's tf.summary.scalar, torch with new_style=True; `values.py`). The hparams plugin's
session start info fills `config.*`. This module finds the runs and their files and loads
them.

Each folder holding event files is a run. With a path template
(``"logs/{algo}/{env}/seed_{seed}"``) the matched folders are the runs, their fields go to
`config.*`, and event files in subfolders of a run (Keras' train/ and validation/) give
metrics named ``<subfolder>/<tag>``.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rungroup.runs import Runs
from rungroup.sources.files import read_bytes, walk
from rungroup.sources.runrecords import (
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
from rungroup.sources.tensorboard.decode import BATCH_BYTES, Pending, Scalars, decode_files

__all__ = ["is_tensorboard", "load_tensorboard"]


EVENT_GLOB = "events.out.tfevents.*"


def is_tensorboard(source: Any) -> bool:
    """True for an event file, or a folder with event files within three levels."""
    try:
        path = Path(source)
        if path.is_file():
            return path.name.startswith("events.out.tfevents.")
        if not path.is_dir():
            return False
        for depth in range(4):
            pattern = "/".join(["*"] * depth + [EVENT_GLOB])
            if next(iter(path.glob(pattern)), None) is not None:
                return True
    except (OSError, TypeError):
        return False
    return False


def _run_folders(source: str | Path) -> tuple[Path, list[tuple[Path, dict[str, Any]]], bool]:
    """(root, [(run folder, template fields)], templated)."""
    text_source = str(source)
    if "{" in text_source or "*" in text_source:
        template = Template.parse(text_source)
        found = []
        for path in template.paths():
            if path.is_dir():
                fields = template.match(path.relative_to(template.root).as_posix()) or {}
                found.append((path, fields))
        return template.root, found, True
    path = Path(text_source)
    if path.is_file():
        return path.parent, [(path.parent, {})], False
    if not path.is_dir():
        raise FileNotFoundError(f"no such TensorBoard log folder: {source}")
    folders = sorted({p.parent for p in walk(path, is_event_file)})
    return path, [(f, {}) for f in folders], False


def is_event_file(name: str) -> bool:
    return name.startswith("events.out.tfevents.")


RunFiles = list[tuple[Path, dict[str, Any], list[tuple[Path, str]]]]


def find_run_files(source: str | Path) -> tuple[Path, bool, RunFiles]:
    """(root, templated, [(run folder, template fields, [(event file, metric prefix)])])."""
    root, folders, templated = _run_folders(source)
    single_file = Path(str(source)).is_file()
    run_files: RunFiles = []
    for folder, fields in folders:
        if single_file:
            files = [(Path(str(source)), "")]
        elif templated:
            files = [
                (
                    p,
                    shown(p.parent.relative_to(folder).as_posix()) + "/"
                    if p.parent != folder
                    else "",
                )
                for p in walk(folder, is_event_file)
            ]
        else:
            files = [(p, "") for p in _event_files(folder)]
        if files:
            run_files.append((folder, fields, files))
    return root, templated, run_files


def _event_files(folder: Path) -> list[Path]:
    """The event files directly in `folder` (FIFOs and devices skipped with a warning)."""
    found = []
    for path in sorted(folder.glob(EVENT_GLOB)):
        try:
            mode = path.stat().st_mode
        except OSError as error:
            warn(path, f"not read ({error.strerror or error}); skipped")
            continue
        if stat.S_ISREG(mode):
            found.append(path)
        elif not stat.S_ISDIR(mode):
            warn(path, "not a regular file (a FIFO, device or socket); skipped")
    return found


def merge_hparams_folders(
    parsed: dict[Path, tuple[dict[str, Any], Scalars]], root: Path, templated: bool
) -> None:
    """torch's add_hparams() writes its hparams into a timestamped subfolder of the run: a
    folder holding only hparams (and their metric copies) joins its parent run (in place)."""
    if templated:
        return
    for folder in sorted(parsed, key=lambda p: len(p.parts), reverse=True):
        scalars = parsed[folder][1]
        if scalars.hparams and folder.parent in parsed and folder != root:
            parent = parsed[folder.parent][1]
            parent.hparams = {**scalars.hparams, **parent.hparams}
            parent.state = parent.state or scalars.state
            del parsed[folder]


def run_record(
    folder: Path,
    fields: dict[str, Any],
    scalars: Scalars,
    root: Path,
    options: dict[str, Any],
) -> RunRecord:
    """A run's record; `options`: `project`, `group`, `job_type`, `name`, `hparams` as given
    to `load_tensorboard`."""
    relative = folder.relative_to(root).as_posix() if folder != root else folder.name
    record = RunRecord(
        id=shown(relative or folder.name),
        source=f"tensorboard:{shown(folder)}",
        project=options["project"],
        group=scalars.group,
        state=scalars.state,
    )
    if options["hparams"]:
        record.config.update(scalars.hparams)
    apply_fields(record, fields)
    values = {**record.config, **fields}
    for attribute in ("group", "job_type", "name"):
        value = format_option(options[attribute], values)
        if value is not None:
            setattr(record, attribute, value)
    record.created_at = utc_from_seconds(scalars.first_wall)
    if scalars.first_wall is not None and scalars.last_wall is not None:
        record.runtime = scalars.last_wall - scalars.first_wall
    return record


def timed_points(points: pl.DataFrame | pl.LazyFrame, run_id: Any, first: Any) -> Any:
    """(metric, step, wall, value) -> history chunk columns; `run_id` and `first` (the run's
    first wall time) are values or expressions."""
    run = run_id if isinstance(run_id, pl.Expr) else pl.lit(run_id, pl.String)
    wall = pl.col("wall").fill_nan(None)
    return points.select(
        run.alias("run_id"),
        "metric",
        "step",
        (wall - first).alias("time"),
        (wall * 1e6).round().cast(pl.Int64).cast(pl.Datetime("us", "UTC")).alias("timestamp"),
        "value",
    )


def load_tensorboard(
    source: str | Path,
    *,
    project: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    name: str | None = None,
    hparams: bool = True,
    check_crc: bool = True,
    progress_bar: bool | None = None,
) -> Runs:
    """Load the scalars of TensorBoard event files, one run per folder.

    `source` is a log folder, one event file, or a path template such as
    ``"logs/{algo}/{env}/seed_{seed}"`` (fields -> `config.*`, numbers parsed; fields named
    `group`, `job_type`, `name`, `project` fill those columns). `group`, `job_type`, `name`
    can name a field or be a format string of fields and hparams (``"{algo}-{lr}"``).
    `check_crc=False` skips the checksums (faster; corrupt records are then only caught by
    the protobuf decoding).
    """
    root, templated, run_files = find_run_files(source)
    parsed: dict[Path, tuple[dict[str, Any], Scalars]] = {}
    batch: list[Pending] = []
    size = 0
    for folder, fields, files in progress(
        run_files, total=len(run_files), desc="tensorboard", enabled=progress_bar
    ):
        scalars = Scalars()
        for path, prefix in files:
            try:
                data = read_bytes(path)
            except OSError as error:
                warn(path, f"not read ({error})")
                continue
            batch.append((scalars, path, prefix, data))
            size += len(data)
        parsed[folder] = (fields, scalars)
        if size >= BATCH_BYTES:
            decode_files(batch, check_crc)
            batch, size = [], 0
    decode_files(batch, check_crc)

    merge_hparams_folders(parsed, root, templated)
    options = {
        "project": project,
        "group": group,
        "job_type": job_type,
        "name": name,
        "hparams": hparams,
    }
    records: list[RunRecord] = []
    blocks: list[pl.DataFrame] = []
    owners: list[str] = []
    firsts: list[float] = []
    heights: list[int] = []
    for folder, (fields, scalars) in parsed.items():
        record = run_record(folder, fields, scalars, root, options)
        records.append(record)
        height = sum(block.height for block in scalars.blocks)
        if height:
            blocks += scalars.blocks
            owners.append(record.id)
            firsts.append(scalars.first_wall if scalars.first_wall is not None else 0.0)
            heights.append(height)
    if not blocks:
        return assemble(records, [])
    # One select for all runs (not one per run): each point's run and its run's first time.
    # Run and metric names categorical already, as `assemble` makes them (blocks decoded
    # file by file have metric names as strings).
    spread = np.repeat(np.arange(len(owners)), heights)
    points = pl.concat(
        [
            b.with_columns(pl.col("metric").cast(pl.Categorical))
            if b.schema["metric"] == pl.String
            else b
            for b in blocks
        ]
    ).with_columns(
        pl.Series("run_id", owners, dtype=pl.Categorical).gather(spread),
        pl.Series("first", firsts, dtype=pl.Float64).gather(spread),
    )
    return assemble(records, [timed_points(points, pl.col("run_id"), pl.col("first"))])
