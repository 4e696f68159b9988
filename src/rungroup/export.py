"""Export an aggregate (or summary) frame with its recipe, and read the recipe back.

``export(frame, "curves.parquet")`` writes the frame and its `View` (the recipe) into the
Parquet file's key-value metadata under the key ``"rungroup"``; ``export(frame, "curves.csv")``
writes the CSV and the recipe next to it as ``curves.csv.recipe.json``. `load_recipe(path)`
returns the `View`; ``aggregate(runs, load_recipe(path))`` on the same runs gives the same frame.

The recipe is JSON: ``{"rungroup_view": View.to_dict(), "rungroup_version": ...,
"columns": {"line": "mean", "lower": "mean - std", "upper": "mean + std"}, ...}`` (the same
layout as the widget's exports; ``columns`` says which statistic each drawn column is).

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and run
names, group names and config values come from whoever wrote the runs. So a CSV export guards
text by default (``csv_guard=True``, OWASP's advice against CSV injection): a text cell, or a
column name, that starts with one of ``= + - @``, a tab or a carriage return gets a ``'``
prefix, which spreadsheets show as text. Numbers are never changed (``-0.5`` stays ``-0.5``),
nor is Parquet. ``csv_guard=False`` writes text exactly as it is (for a program that reads the
CSV back); docs/security.md says where else rungroup escapes what runs provide.

Files: the path you name is written even if it exists (you asked for that file), as is its
sidecar; both are written to a temporary file first and moved into place, so a failed export
never leaves half a file. Nothing else is touched.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from rungroup.engine.recipe import recipe_extra, recipe_of
from rungroup.view import View, band_columns

#: The Parquet key-value metadata key that holds the recipe.
METADATA_KEY = "rungroup"
#: The suffix of the JSON sidecar of a CSV export.
SIDECAR_SUFFIX = ".recipe.json"
FORMATS = (".csv", ".parquet")
#: What a spreadsheet reads as the start of a formula (OWASP's list: = + - @ tab CR).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = r"^[=+\-@\t\r]"


def recipe_dict(view: View, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-safe recipe of a frame made with `view`."""
    from rungroup import __version__

    recipe: dict[str, Any] = {
        "rungroup_view": view.to_dict(),
        "rungroup_version": __version__,
        "columns": band_columns(view),
    }
    if extra:
        recipe.update(extra)
    return recipe


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _flat(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV cannot hold lists: they become their items joined with ", "."""
    lists = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List)]
    if not lists:
        return frame
    return frame.with_columns(
        pl.col(name).list.eval(pl.element().cast(pl.String)).list.join(", ") for name in lists
    )


def guard_text(text: str) -> str:
    """`text` with a ``'`` before it if a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _guarded(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with every text cell and column name passed through `guard_text`."""
    texts = [
        name
        for name, dtype in frame.schema.items()
        if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)
    ]
    frame = frame.with_columns(
        pl.when(pl.col(name).cast(pl.String).str.contains(_FORMULA_PATTERN))
        .then(pl.lit("'") + pl.col(name).cast(pl.String))
        .otherwise(pl.col(name).cast(pl.String))
        .alias(name)
        for name in texts
    )
    return frame.rename({name: guard_text(name) for name in frame.columns})


def export(
    frame: pl.DataFrame,
    path: str | os.PathLike[str],
    view: View | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
    csv_guard: bool = True,
) -> Path:
    """Write `frame` to `path` (``.csv`` or ``.parquet``) with its recipe; return the path.

    `view` defaults to the frame's recipe (`rungroup.recipe_of`); a frame that has none (any
    frame derived from an aggregate) needs ``view=`` explicitly. `extra` adds JSON-safe keys
    to the recipe. `csv_guard` (CSV only, on by default) prefixes ``'`` to text cells and
    column names that a spreadsheet would run as a formula (see the module's docstring).
    """
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"export() takes a Polars DataFrame, got {type(frame).__name__}")
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot export to {target.name!r}: the name must end in one of {', '.join(FORMATS)}"
        )
    if view is None:
        view = recipe_of(frame)
    if view is None:
        raise ValueError(
            "this frame carries no recipe (only frames returned by rungroup.aggregate do); "
            "pass the View that made it: export(frame, path, view=...)"
        )
    if not isinstance(view, View):
        raise TypeError(f"view must be a rungroup.View, got {type(view).__name__}")
    # keys attached by the function that made the frame (a comparison's settings, ...)
    recipe = recipe_dict(view, {**(recipe_extra(frame) or {}), **(extra or {})})
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(recipe, indent=2, sort_keys=True) + "\n"
    if suffix == ".parquet":
        temporary = target.with_name(f".{target.name}.tmp{os.getpid()}")
        try:
            frame.write_parquet(temporary, metadata={METADATA_KEY: text})
            temporary.replace(target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    else:
        flat = _flat(frame)
        _atomic_write(target, (_guarded(flat) if csv_guard else flat).write_csv().encode())
        _atomic_write(target.with_name(target.name + SIDECAR_SUFFIX), text.encode())
    return target


def read_recipe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The whole recipe dict of an export (or of a ``.recipe.json`` sidecar itself)."""
    source = Path(path)
    name = source.name.lower()
    if name.endswith(SIDECAR_SUFFIX):
        text = source.read_text()
    elif name.endswith(".parquet"):
        metadata = pl.read_parquet_metadata(source)
        if METADATA_KEY not in metadata:
            raise ValueError(f"{source} has no rungroup recipe in its Parquet metadata")
        text = metadata[METADATA_KEY]
    elif name.endswith(".csv"):
        sidecar = source.with_name(source.name + SIDECAR_SUFFIX)
        if not sidecar.exists():
            raise FileNotFoundError(f"{source} has no recipe: {sidecar.name} is missing")
        text = sidecar.read_text()
    else:
        raise ValueError(
            f"cannot read a recipe from {source.name!r}: use a .csv, .parquet or "
            f"{SIDECAR_SUFFIX} file"
        )
    recipe = json.loads(text)
    if not isinstance(recipe, dict) or not isinstance(recipe.get("rungroup_view"), dict):
        raise ValueError(f"{source} holds no rungroup recipe (no 'rungroup_view' entry)")
    return recipe


def load_recipe(path: str | os.PathLike[str]) -> View:
    """The `View` that made an exported frame: ``aggregate(runs, load_recipe(path))``."""
    return View.from_dict(read_recipe(path)["rungroup_view"])
