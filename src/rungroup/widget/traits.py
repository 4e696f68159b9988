"""The Explorer's synced traits made from `View`: one per field, same name, same order.

The trait types follow the fields' types (tuples and sets are lists on the wire, as in
`View.to_dict`); their defaults are `View()`'s, except the widget's own `PRESETS`, declared
here once.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import TYPE_CHECKING, Any

import anywidget
from traitlets import Bool, Float, Int, List, TraitType, Unicode

from rungroup.view import View

#: Where the widget's defaults differ from `View()`'s. ``points``: a chart panel is a few
#: hundred pixels wide, and 400 points per series keep an update of 10 groups x 4 metrics
#: under 500 KB on the wire; ``Explorer(..., points=1500)`` gives the engine's default back.
PRESETS: dict[str, Any] = {"points": 400}
#: Traits that are `View` fields (same names, same order as the dataclass).
VIEW_FIELDS: tuple[str, ...] = View.field_names()
#: Widget-only settings: what the table shows and which group page is open.
UI_FIELDS: tuple[str, ...] = ("search", "focus", "sort", "expanded", "table_columns")


def _view_trait(hint: Any, default: Any) -> TraitType[Any, Any]:
    """The synced trait of a `View` field, from its type and the widget's default."""
    scalars: dict[Any, type[TraitType[Any, Any]]] = {
        bool: Bool,
        int: Int,
        float: Float,
        str: Unicode,
    }
    if hint in scalars:
        return scalars[hint](default).tag(sync=True)
    args = typing.get_args(hint)
    item = scalars[args[0]]()
    # a fixed-length tuple (quantiles) keeps its length on the wire
    size = {} if Ellipsis in args or len(args) < 2 else {"minlen": len(args), "maxlen": len(args)}
    return List(item, default_value=default, **size).tag(sync=True)


def _view_traits() -> dict[str, TraitType[Any, Any]]:
    hints = typing.get_type_hints(View)
    defaults = View(**PRESETS).to_dict()
    return {f.name: _view_trait(hints[f.name], defaults[f.name]) for f in dataclasses.fields(View)}


if TYPE_CHECKING:
    ViewTraits = anywidget.AnyWidget
else:
    #: One trait per `View` field, made from the dataclass (traitlets reads a class's traits
    #: when the class is made, so they are given to a base class).
    ViewTraits = type("ViewTraits", (anywidget.AnyWidget,), _view_traits())
