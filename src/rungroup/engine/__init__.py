"""The grouping engine: pure functions of (Runs, View), no I/O and no widgets."""

from rungroup.engine.aggregate import aggregate
from rungroup.engine.recipe import recipe_of
from rungroup.engine.summarize import summarize

__all__ = ["aggregate", "recipe_of", "summarize"]
