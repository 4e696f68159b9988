"""The Explorer widget (`rungroup.Explorer`): see docs/widget.md and docs/architecture.md.

`Explorer` is imported when first used: importing a module of this package (its table, its
session) does not load anywidget and ipywidgets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Explorer"]

if TYPE_CHECKING:
    from rungroup.widget.explorer import Explorer


def __getattr__(name: str) -> Any:
    if name != "Explorer":
        raise AttributeError(f"module 'rungroup.widget' has no attribute {name!r}")
    from rungroup.widget.explorer import Explorer

    globals()[name] = Explorer
    return Explorer


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
