"""rungroup: group machine-learning runs into experiments, locally and offline, in Jupyter.

Public names are imported when first used (PEP 562), so a training script that only calls
`rungroup.init()` never imports the widget, Altair or the loaders of other trackers.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from rungroup._version import __version__

#: Public name -> the module that defines it.
_LAZY = {
    "Config": "rungroup.tracking",
    "Explorer": "rungroup.widget",
    "LoadWarning": "rungroup.runs",
    "Run": "rungroup.tracking",
    "Runs": "rungroup.runs",
    "StoreError": "rungroup.store",
    "Summary": "rungroup.tracking",
    "View": "rungroup.view",
    "WriteWarning": "rungroup.tracking",
    "aggregate": "rungroup.engine",
    "chart": "rungroup.chart",
    "compare": "rungroup.engine.compare",
    "export": "rungroup.export",
    "from_frames": "rungroup.sources.frames.convert",
    "generate_id": "rungroup.tracking",
    "init": "rungroup.tracking",
    "load": "rungroup.sources",
    "load_csv": "rungroup.sources.csv.tree",
    "load_mlflow": "rungroup.sources.mlflow.reader",
    "load_recipe": "rungroup.export",
    "load_tensorboard": "rungroup.sources.tensorboard.events",
    "load_wandb": "rungroup.sources.wandb.offline",
    "performance_profile": "rungroup.engine.compare",
    "profile_chart": "rungroup.profile_chart",
    "recipe_of": "rungroup.engine",
    "summarize": "rungroup.engine",
}

__all__ = [
    "Config",
    "Explorer",
    "LoadWarning",
    "Run",
    "Runs",
    "StoreError",
    "Summary",
    "View",
    "WriteWarning",
    "__version__",
    "aggregate",
    "chart",
    "compare",
    "export",
    "from_frames",
    "generate_id",
    "init",
    "load",
    "load_csv",
    "load_mlflow",
    "load_recipe",
    "load_tensorboard",
    "load_wandb",
    "performance_profile",
    "profile_chart",
    "recipe_of",
    "summarize",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rungroup' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(types.ModuleType):
    """Keeps the public functions `chart`, `export` and `profile_chart` on the package.

    Importing the submodule ``rungroup.chart`` binds it to the package's attribute ``chart``,
    which would hide the function of that name; the function is what users call.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:
    from rungroup.chart import chart
    from rungroup.engine import aggregate, recipe_of, summarize
    from rungroup.engine.compare import compare, performance_profile
    from rungroup.export import export, load_recipe
    from rungroup.profile_chart import profile_chart
    from rungroup.runs import LoadWarning, Runs
    from rungroup.sources import load
    from rungroup.sources.csv.tree import load_csv
    from rungroup.sources.frames.convert import from_frames
    from rungroup.sources.mlflow.reader import load_mlflow
    from rungroup.sources.tensorboard.events import load_tensorboard
    from rungroup.sources.wandb.offline import load_wandb
    from rungroup.store import StoreError
    from rungroup.tracking import Config, Run, Summary, WriteWarning, generate_id, init
    from rungroup.view import View
    from rungroup.widget import Explorer
