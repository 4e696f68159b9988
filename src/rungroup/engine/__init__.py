"""The grouping engine: pure functions of (Runs, View), no I/O and no widgets; what they reuse
between calls lives in a `Workspace` its caller owns.

Imported eagerly: every engine module needs Polars anyway, and a lazy name would be hidden by
the submodule of the same name (`rungroup.engine.aggregate`) once that is imported."""

from rungroup.engine.aggregate import aggregate
from rungroup.engine.last_values import final_values
from rungroup.engine.recipe import recipe_of
from rungroup.engine.summarize import summarize
from rungroup.engine.workspace import Workspace

__all__ = ["Workspace", "aggregate", "final_values", "recipe_of", "summarize"]
