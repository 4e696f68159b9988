"""The grouping engine: pure functions of (Runs, View), no I/O and no widgets; what they reuse
between calls lives in a `Workspace` its caller owns. Names are imported when first used, so
that importing one engine module does not load them all."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_ORIGINS = {
    "Workspace": "rungroup.engine.workspace",
    "aggregate": "rungroup.engine.aggregate",
    "final_values": "rungroup.engine.last_values",
    "recipe_of": "rungroup.engine.recipe",
    "summarize": "rungroup.engine.summarize",
}

__all__ = ["Workspace", "aggregate", "final_values", "recipe_of", "summarize"]

if TYPE_CHECKING:
    from rungroup.engine.aggregate import aggregate
    from rungroup.engine.last_values import final_values
    from rungroup.engine.recipe import recipe_of
    from rungroup.engine.summarize import summarize
    from rungroup.engine.workspace import Workspace


def __getattr__(name: str) -> Any:
    origin = _ORIGINS.get(name)
    if origin is None:
        raise AttributeError(f"module 'rungroup.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(origin), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
