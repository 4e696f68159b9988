"""The recipe of an aggregate frame: the `View` that made it.

`aggregate()` returns a plain `pl.DataFrame`; Polars frames carry no metadata, so the View is
kept in a registry keyed by the frame's identity and held by a weak reference: it lives exactly
as long as the frame object does. Any derived frame (a filter, a `with_columns`, a round trip
through pandas) is a new object without a recipe: it no longer shows what the view produced,
so `recipe_of` honestly returns None for it and an export needs ``view=`` explicitly.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import polars as pl

from rungroup.view import View

_RECIPES: dict[int, tuple[weakref.ref[pl.DataFrame], View, Mapping[str, Any] | None]] = {}


def attach_recipe(
    frame: pl.DataFrame, view: View, extra: Mapping[str, Any] | None = None
) -> pl.DataFrame:
    """Remember `view` (and `extra`: JSON-safe recipe keys beyond the View, e.g. a
    comparison's settings) for exactly this frame object."""
    key = id(frame)

    def forget(_: object, key: int = key) -> None:
        _RECIPES.pop(key, None)

    _RECIPES[key] = (weakref.ref(frame, forget), view, extra)
    return frame


def recipe_of(frame: pl.DataFrame) -> View | None:
    """The `View` that `aggregate()` used to make `frame` (None for any other frame)."""
    entry = _RECIPES.get(id(frame))
    if entry is None or entry[0]() is not frame:
        return None
    return entry[1]


def recipe_extra(frame: pl.DataFrame) -> Mapping[str, Any] | None:
    """The recipe keys beyond the View that were attached to `frame` (None if none)."""
    entry = _RECIPES.get(id(frame))
    if entry is None or entry[0]() is not frame:
        return None
    return entry[2]
