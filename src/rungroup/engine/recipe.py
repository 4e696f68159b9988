"""The recipe of an aggregate frame: the `View` that made it.

`aggregate()` returns a plain `pl.DataFrame`; Polars frames carry no metadata, so the View is
set as an attribute of the frame object itself: it lives exactly as long as the frame does,
with no registry to keep. Any derived frame (a filter, a `with_columns`, a round trip through
pandas) is a new object without it: it no longer shows what the view produced, so `recipe_of`
honestly returns None for it and an export needs ``view=`` explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from rungroup.view import View

#: The frame attribute that holds its `_Recipe`.
_ATTRIBUTE = "_rungroup_recipe"


@dataclass(frozen=True)
class _Recipe:
    view: View
    #: JSON-safe recipe keys beyond the View (a comparison's settings, ...).
    extra: Mapping[str, Any] | None


def attach_recipe(
    frame: pl.DataFrame, view: View, extra: Mapping[str, Any] | None = None
) -> pl.DataFrame:
    """Remember `view` (and `extra`: JSON-safe recipe keys beyond the View, e.g. a
    comparison's settings) for exactly this frame object."""
    setattr(frame, _ATTRIBUTE, _Recipe(view, extra))
    return frame


def _recipe(frame: pl.DataFrame) -> _Recipe | None:
    recipe = getattr(frame, _ATTRIBUTE, None)
    return recipe if isinstance(recipe, _Recipe) else None


def recipe_of(frame: pl.DataFrame) -> View | None:
    """The `View` that `aggregate()` used to make `frame` (None for any other frame)."""
    recipe = _recipe(frame)
    return None if recipe is None else recipe.view


def recipe_extra(frame: pl.DataFrame) -> Mapping[str, Any] | None:
    """The recipe keys beyond the View that were attached to `frame` (None if none)."""
    recipe = _recipe(frame)
    return None if recipe is None else recipe.extra
